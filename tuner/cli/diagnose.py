"""``tuner diagnose``: overfitting, underfitting, insufficient data and biased data for a study."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from tuner.cli.common import fmt_value, locate, out, storage_option
from tuner.store import schema, trial_record

if TYPE_CHECKING:
    from rich.console import Console

    from tuner.diagnostics import StudyDiagnosis


def _sizes(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated fractions such as 0.1,0.25,0.5,1; got {value!r}") from None


@click.command()
@click.argument("study")
@storage_option
@click.option(
    "--sizes",
    default="0.1,0.25,0.5,0.75,1",
    show_default=True,
    callback=_sizes,
    help="Fractions of each training fold for the learning curve.",
)
@click.option(
    "--no-curve", is_flag=True, help="Skip the learning curve (it fits the best configuration sizes × folds times)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the diagnosis as JSON.")
def diagnose(study: str, storage: str | None, sizes: tuple[float, ...], no_curve: bool, as_json: bool) -> None:
    """Diagnose STUDY (a study name or its spec file): data summary, flags, groups, learning curve."""
    from tuner.diagnostics import diagnose as run_diagnosis  # start-up time: scikit-learn comes with it

    ref = locate(study, storage)
    report = run_diagnosis(ref, sizes=sizes, curve=not no_curve)
    if as_json:
        click.echo(json.dumps(_as_json(report), indent=2, allow_nan=False, default=str))
        return
    console = out()
    _print_overview(console, report)
    _print_best(console, report)
    if report.curve is not None:
        table = Table(title=f"Learning curve of trial #{report.best.number if report.best else '-'}")
        for column in ("training rows", "share", f"train {report.metric}", f"validation {report.metric}", "± std"):
            table.add_column(column, justify="right")
        for p in report.curve.points:
            table.add_row(
                str(p.rows), f"{p.fraction:.0%}", fmt_value(p.train_mean), fmt_value(p.val_mean), fmt_value(p.val_std)
            )
        console.print(table)
        console.print(report.curve.verdict, highlight=False)
    _print_remedies(console, report)


def _print_remedies(console: Console, report: StudyDiagnosis) -> None:
    if not report.remedies:
        return
    console.print("\nWhat to try next (paste a snippet over the study file):", highlight=False)
    for remedy in report.remedies:
        console.print("\n".join(remedy.lines()), highlight=False, markup=False)


def _print_overview(console: Console, report: StudyDiagnosis) -> None:
    summary = report.summary
    flags = ", ".join(f"{n} {flag}" for flag, n in sorted(report.flag_counts.items())) or "none flagged"
    console.print(
        f"Study {report.study}: metric {report.metric}, constant-model baseline {fmt_value(report.baseline)}; "
        f"{report.n_complete} complete trials ({flags}).",
        highlight=False,
    )
    line = f"Data: {summary.rows} rows × {summary.features} features, {summary.task}"
    if summary.class_counts:
        line += "; classes " + ", ".join(f"{k}: {v}" for k, v in summary.class_counts.items())
    if summary.group_counts:
        line += "; groups " + ", ".join(f"{k}: {v}" for k, v in summary.group_counts.items())
    console.print(line + ".", highlight=False)
    for note in summary.warnings:
        console.print(f"  warning: {note}", highlight=False)


def _print_best(console: Console, report: StudyDiagnosis) -> None:
    trial = report.best
    if trial is None:
        console.print("No complete (feasible) trial yet: nothing to diagnose beyond the data.")
        return
    attrs = trial.user_attrs
    console.print(
        f"Best trial #{trial.number}: train {fmt_value(attrs.get(schema.TRAIN_MEAN))} "
        f"± {fmt_value(attrs.get(schema.TRAIN_STD))}, "
        f"validation {fmt_value(attrs.get(schema.VAL_MEAN))} ± {fmt_value(attrs.get(schema.VAL_STD))}, "
        f"gap {fmt_value(attrs.get(schema.GAP))}; flags: {', '.join(attrs.get(schema.FLAGS) or []) or 'none'}.",
        highlight=False,
    )
    groups = attrs.get(schema.GROUP_SCORES)
    if isinstance(groups, dict) and groups:
        rows = report.summary.group_counts
        table = Table(title=f"Validation {report.metric} per group (trial #{trial.number})")
        for column in ("group", "rows", report.metric):
            table.add_column(column, justify="right")
        for group, score in sorted(groups.items(), key=lambda item: (item[1] is None, item[1])):
            table.add_row(str(group), str(rows.get(group, "-")), fmt_value(score))
        console.print(table)
        console.print(
            f"Worst group {attrs.get(schema.WORST_GROUP_NAME)!r} ({fmt_value(attrs.get(schema.WORST_GROUP_SCORE))}); "
            f"largest gap between groups {fmt_value(attrs.get(schema.GROUP_GAP))}.",
            highlight=False,
        )


def _as_json(report: StudyDiagnosis) -> dict[str, Any]:
    payload = {f.name: getattr(report, f.name) for f in dataclasses.fields(report)}
    payload["summary"] = dataclasses.asdict(report.summary)
    payload["curve"] = dataclasses.asdict(report.curve) if report.curve else None
    payload["best"] = trial_record(report.best) if report.best else None
    payload["remedies"] = [dataclasses.asdict(r) for r in report.remedies]
    return payload


COMMANDS = [diagnose]
