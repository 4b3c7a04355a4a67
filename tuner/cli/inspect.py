"""``tuner list``, ``show``, ``best`` and ``export``: read studies back from the storage."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from tuner.cli.common import fmt_value, out, storage_option, storage_url, study_ref
from tuner.results import best_trial, export_trials, list_studies, load_study, top_trials, trial_record
from tuner.storage import redact

_SHOWN_ATTRS = ("val_std", "fit_seconds")


@click.command(name="list")
@storage_option
def list_(storage: str | None) -> None:
    """List the studies in a storage."""
    url = storage_url(storage)
    rows = list_studies(url)
    console = out()
    if not rows:
        console.print(f"No studies in {redact(url)}.")
        return
    table = Table(title=f"Studies in {redact(url)}")
    for column in ("study", "model", "metric", "trials", "complete", "best", "started"):
        table.add_column(column)
    for row in rows:
        started = row.started.strftime("%Y-%m-%d %H:%M") if row.started else "-"
        table.add_row(
            row.name,
            row.model,
            row.metric,
            str(row.n_trials),
            str(row.n_complete),
            fmt_value(row.best_value),
            started,
        )
    console.print(table)


@click.command()
@click.argument("study")
@storage_option
@click.option("--top", default=10, show_default=True, type=click.IntRange(min=1), help="How many trials to show.")
def show(study: str, storage: str | None, top: int) -> None:
    """Show the best trials of STUDY (a study name or its spec file)."""
    name, url = study_ref(study, storage)
    loaded = load_study(name, url)
    trials = top_trials(loaded, top)
    console = out()
    counts = {s: 0 for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")}
    for trial in loaded.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    metric = loaded.user_attrs.get("tuner:metric", "value")
    console.print(
        f"Study {name} ({redact(url)}): model {loaded.user_attrs.get('tuner:model', '-')}, metric {metric}; "
        + ", ".join(f"{v} {k.lower()}" for k, v in counts.items() if v),
        highlight=False,
    )
    if not trials:
        console.print("No complete trials yet.")
        return
    params = sorted({p for t in trials for p in t.params})
    table = Table(title=f"Top {len(trials)} trials")
    for column in ("#", metric, "± std", "fit s", *params):
        table.add_column(column, overflow="fold")
    for trial in trials:
        fit = trial.user_attrs.get("fit_seconds")
        table.add_row(
            str(trial.number),
            fmt_value(trial.value),
            fmt_value(trial.user_attrs.get("val_std")),
            fmt_value(sum(fit) if isinstance(fit, list) else None),
            *(fmt_value(trial.params.get(p), none="None") if p in trial.params else "-" for p in params),
        )
    console.print(table)


@click.command()
@click.argument("study")
@storage_option
@click.option("--json", "as_json", is_flag=True, help="Print the best trial as JSON.")
def best(study: str, storage: str | None, as_json: bool) -> None:
    """Print the best trial of STUDY (a study name or its spec file)."""
    name, url = study_ref(study, storage)
    loaded = load_study(name, url)
    trial = best_trial(loaded)
    if as_json:
        record = trial_record(trial) if trial else None
        click.echo(json.dumps({"study": name, "best_trial": record}, indent=2, allow_nan=False))
        return
    if trial is None:
        click.echo(f"Study {name} has no complete trial with a finite value yet.")
        return
    metric = loaded.user_attrs.get("tuner:metric", "value")
    click.echo(f"Best trial #{trial.number} of {name}: {metric} = {fmt_value(trial.value)}")
    for key, value in trial.params.items():
        click.echo(f"  {key} = {fmt_value(value, none='None')}")
    scores = trial.user_attrs.get("val_scores")
    if scores:
        click.echo("  fold scores: " + ", ".join(fmt_value(s) for s in scores))


@click.command()
@click.argument("study")
@storage_option
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--out", "out_path", type=click.Path(path_type=Path), help="Write to this file instead of stdout.")
def export(study: str, storage: str | None, fmt: str, out_path: Path | None) -> None:
    """Export every trial of STUDY (params, values, user attributes, times) as CSV or JSON."""
    name, url = study_ref(study, storage)
    text = export_trials(load_study(name, url), fmt)
    if out_path is None:
        click.echo(text, nl=False)
        return
    out_path.write_text(text, encoding="utf-8")
    click.echo(f"Wrote {out_path}", err=True)


COMMANDS = [list_, show, best, export]
