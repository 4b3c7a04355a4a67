"""``tuner list``, ``show``, ``best`` and ``export``: read studies back from the storage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from tuner.cli.common import fmt_value, locate, out, out_path_option, storage_option, storage_url_of
from tuner.outputs import file_in, output_file
from tuner.store import (
    EXPORT_FORMATS,
    StudySummary,
    export_parquet,
    export_stream,
    is_feasible,
    list_studies,
    load_stored,
    read_summary,
    redact,
    schema,
    trial_record,
)

if TYPE_CHECKING:
    import optuna


@click.command(name="list")
@storage_option
def list_(storage: str | None) -> None:
    """List the studies in a storage."""
    url = storage_url_of(storage)
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
    ref = locate(study, storage)
    name, url = ref.name, ref.url
    summary = read_summary(name, url, top=top)
    trials = summary.top
    console = out()
    by_state = summary.counts
    metric = summary.user_attrs.get(schema.METRIC, "value")
    console.print(
        f"Study {name} ({redact(url)}): model {summary.user_attrs.get(schema.MODEL, '-')}, metric {metric}; "
        + ", ".join(f"{by_state[k]} {k}" for k in ("complete", "pruned", "fail", "running", "waiting") if by_state[k]),
        highlight=False,
    )
    choice = summary.choice
    if choice is not None:
        console.print(f"Final choice: trial #{choice.trial.number}", highlight=False)
        for line in choice.lines(str(metric)):
            console.print(line, highlight=False, soft_wrap=True)
    refit = summary.refit_model
    if isinstance(refit, dict):
        console.print(
            f"Refit model (trial #{refit.get(schema.REFIT_TRIAL)}): {refit.get(schema.REFIT_PATH)}", highlight=False
        )
    if not trials:
        console.print("No complete trials yet.")
        return
    params = sorted({p for t in trials for p in t.params})
    objectives = summary.objectives
    # Diagnostics that are not already an objective column: the metric itself (when the objective
    # is penalised or a group score), the train − validation gap, the worst group's score.
    extra = {
        metric: schema.VAL_MEAN,
        "gap": schema.GAP,
        "worst group": schema.WORST_GROUP_SCORE if "worst_group" not in objectives else "",
    }
    extra = {k: v for k, v in extra.items() if v and k not in objectives and any(v in t.user_attrs for t in trials)}
    table = Table(title=f"Top {len(trials)} trials")
    for column in ("#", *objectives, "± std", *extra, "flags", "fit s"):
        table.add_column(column, no_wrap=True)
    # One column per parameter is unreadable past three or four; one line per parameter is not.
    table.add_column("params", overflow="fold")
    for trial in trials:
        attrs = trial.user_attrs
        fit = attrs.get(schema.FIT_SECONDS)
        table.add_row(
            str(trial.number),
            *(fmt_value(v) for v in trial.values),
            fmt_value(attrs.get(schema.VAL_STD)),
            *(fmt_value(attrs.get(key)) for key in extra.values()),
            _flags(trial),
            fmt_value(sum(fit) if isinstance(fit, list) else None),
            "\n".join(f"{p}={fmt_value(trial.params[p], none='None')}" for p in params if p in trial.params),
        )
    console.print(table)


def _flags(trial: optuna.trial.FrozenTrial) -> str:
    flags = list(trial.user_attrs.get(schema.FLAGS) or [])
    if not is_feasible(trial):
        flags.append("infeasible")
    return ", ".join(flags) or "-"


def _diagnostics_lines(trial: optuna.trial.FrozenTrial) -> list[str]:
    attrs = trial.user_attrs
    lines = []
    if schema.TRAIN_MEAN in attrs:
        lines.append(
            f"  train {fmt_value(attrs.get(schema.TRAIN_MEAN))}, validation {fmt_value(attrs.get(schema.VAL_MEAN))}, "
            f"gap {fmt_value(attrs.get(schema.GAP))}; flags: {_flags(trial)}"
        )
    if schema.WORST_GROUP_SCORE in attrs:
        lines.append(
            f"  worst group {attrs.get(schema.WORST_GROUP_NAME)!r}: {fmt_value(attrs.get(schema.WORST_GROUP_SCORE))}, "
            f"largest gap between groups {fmt_value(attrs.get(schema.GROUP_GAP))}"
        )
    return lines


@click.command()
@click.argument("study")
@storage_option
@click.option("--json", "as_json", is_flag=True, help="Print the best trial as JSON.")
def best(study: str, storage: str | None, as_json: bool) -> None:
    """Print the best trial of STUDY (a study name or its spec file)."""
    ref = locate(study, storage)
    name, url = ref.name, ref.url
    summary = read_summary(name, url)
    if summary.multi_objective:
        _print_pareto(summary, as_json)
        return
    choice = summary.choice
    trial = None if choice is None else choice.trial
    if as_json:
        record = trial_record(trial) if trial else None
        payload = {"study": name, "best_trial": record, "choice": choice.as_dict() if choice else None}
        click.echo(json.dumps(payload, indent=2, allow_nan=False))
        return
    if choice is None or trial is None:
        click.echo(f"Study {name} has no complete trial with a finite value yet.")
        return
    metric = summary.metric
    click.echo(f"Best trial #{trial.number} of {name}: {metric} = {fmt_value(trial.value)}")
    for key, value in trial.params.items():
        click.echo(f"  {key} = {fmt_value(value, none='None')}")
    scores = trial.user_attrs.get(schema.VAL_SCORES)
    if scores:
        click.echo("  fold scores: " + ", ".join(fmt_value(s) for s in scores))
    for line in choice.lines(str(metric)):
        click.echo(line)
    for line in _diagnostics_lines(trial):
        click.echo(line)


def _print_pareto(summary: StudySummary, as_json: bool) -> None:
    """Several objectives have no single best trial: print the Pareto front instead."""
    front = summary.pareto
    names = summary.objectives
    if as_json:
        records = [trial_record(t) for t in front]
        payload = {"study": summary.name, "objectives": names, "best_trial": None, "pareto_front": records}
        click.echo(json.dumps(payload, indent=2, allow_nan=False))
        return
    if not front:
        click.echo(f"Study {summary.name} has no complete feasible trial yet.")
        return
    goals = ", ".join(f"{n} ({d})" for n, d in zip(names, summary.directions, strict=True))
    click.echo(f"Pareto front of {summary.name}: {len(front)} trial(s) that no other trial beats on all of {goals}")
    for trial in front:
        values = ", ".join(f"{n} = {fmt_value(v)}" for n, v in zip(names, trial.values, strict=True))
        click.echo(f"Trial #{trial.number}: {values}")
        for key, value in trial.params.items():
            click.echo(f"  {key} = {fmt_value(value, none='None')}")
        for line in _diagnostics_lines(trial):
            click.echo(line)


@click.command()
@click.argument("study")
@storage_option
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="csv", show_default=True)
@out_path_option("File to write, or an existing folder (then <study>.<format> inside it). Default: stdout (csv/json).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def export(study: str, storage: str | None, fmt: str, out_path: Path | None, force: bool) -> None:
    """Export every trial of STUDY (params, values, user attributes, times) as CSV, JSON or Parquet.

    Existing files are kept unless --force; a file named after the study stays inside the folder
    given (a study name with '..' or a symlink leading out is refused).
    """
    ref = locate(study, storage)
    name, url = ref.name, ref.url
    if out_path is None and fmt == "parquet":
        raise click.UsageError("--format parquet writes a binary file; give it a path with --out FILE.")
    if out_path is not None:
        out_path = (
            file_in(out_path, f"{name}.{fmt}", force=force) if out_path.is_dir() else output_file(out_path, force=force)
        )
    stored = load_stored(name, url)
    if fmt == "parquet":
        assert out_path is not None
        export_parquet(stored, out_path)
    elif out_path is None:
        for piece in export_stream(stored, fmt):
            click.echo(piece, nl=False)
        return
    else:
        # Streamed into a file beside the target, renamed once complete: a read that fails halfway
        # leaves no half-written export under the name asked for.
        target = out_path.resolve()  # through a link the checks allowed, as writing to it would
        partial = target.with_name(f".{target.name}.partial")
        try:
            with partial.open("w", encoding="utf-8", newline="") as file:
                file.writelines(export_stream(stored, fmt))
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
    click.echo(f"Wrote {out_path}", err=True)


COMMANDS = [list_, show, best, export]
