"""Studies side by side: one :class:`ComparisonRow` per study, possibly from different storages.

Everything here takes :class:`~tuner.store.StudySnapshot` objects (plain data read once from a
storage), never a live connection.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import optuna
from rich.table import Table

from tuner import _optuna
from tuner.errors import ReportError
from tuner.store import StudySnapshot, StudySummary, read_summary, resolve_ref, schema, snapshot

COMPARE_FORMATS = ("table", "csv", "json", "markdown")


@dataclass(frozen=True)
class ComparisonRow:
    """One study in a comparison. Times are seconds; ``wall_seconds`` spans first start to last end."""

    study: str
    storage: str
    model: str
    data: str
    metric: str
    direction: str
    complete: int
    pruned: int
    failed: int
    best_trial: int | None
    best_value: float | None
    best_std: float | None
    best_params: dict[str, Any]
    gap: float | None
    worst_group: float | None
    wall_seconds: float | None
    seconds_per_trial: float | None
    # Multi-objective studies have no single best trial; these are their Pareto-optimal trials.
    pareto_trials: tuple[int, ...] = ()


def compare_snapshots(snapshots: Iterable[StudySnapshot | StudySummary]) -> list[ComparisonRow]:
    """One :class:`ComparisonRow` per study (a snapshot or a summary), in the given order."""
    return [row_of(s) for s in snapshots]


def compare(
    studies: Sequence[str | StudySnapshot | optuna.Study],
    *,
    storage: str | None = None,
) -> list[ComparisonRow]:
    """Compare studies, possibly from different storages.

    Args:
        studies: Spec files (name and storage from the spec), ``"name@storage"`` strings (an
            Optuna URL or a .db/.log path), study names (looked up on ``storage``), live
            :class:`optuna.Study` objects or :class:`~tuner.store.StudySnapshot` objects.
        storage: Storage URL or path for plain study names (default ``./tuner.db``).

    Returns:
        One :class:`ComparisonRow` per study; :func:`format_comparison` renders them.

    Example:
        >>> rows = compare(["studies/quickstart.yaml", "other@runs/other.db"])
        >>> print(format_comparison(rows, "markdown"))
    """
    summaries: list[StudySnapshot | StudySummary] = []
    for item in studies:
        if isinstance(item, StudySnapshot):
            summaries.append(item)
        elif isinstance(item, optuna.Study):
            summaries.append(snapshot(item, _study_url(item)))
        else:
            found = resolve_ref(str(item), storage=storage)
            summaries.append(read_summary(found.name, found.url))
    return compare_snapshots(summaries)


def _study_url(study: optuna.Study) -> str:
    engine = getattr(_optuna.storage_of(study), "engine", None)
    return str(getattr(engine, "url", "")) or "in-memory"


def row_of(study: StudySnapshot | StudySummary) -> ComparisonRow:
    """The comparison row of one study (a snapshot's row covers every trial, also when it holds a sample)."""
    summary = study.summary() if isinstance(study, StudySnapshot) else study
    counts = summary.counts
    best = summary.best
    attrs = best.user_attrs if best else {}
    return ComparisonRow(
        study=summary.name,
        storage=summary.storage,
        model=summary.model,
        data=summary.data_source,
        metric=summary.metric,
        direction="/".join(summary.directions),
        complete=counts["complete"],
        pruned=counts["pruned"],
        failed=counts["fail"],
        best_trial=best.number if best else None,
        best_value=number(best.value) if best else None,
        best_std=number(attrs.get(schema.VAL_STD)),
        best_params=dict(best.params) if best else {},
        gap=number(attrs.get(schema.GAP)),
        worst_group=number(attrs.get(schema.WORST_GROUP_SCORE)),
        wall_seconds=summary.wall_seconds,
        seconds_per_trial=summary.seconds_per_trial,
        pareto_trials=summary.pareto_numbers,
    )


def number(value: Any) -> float | None:
    """A finite float, or None for anything else (NaN, text, booleans, missing)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def comparison_records(rows: Iterable[ComparisonRow]) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (the ``--format json`` payload)."""
    return [asdict(r) for r in rows]


def format_comparison(rows: Sequence[ComparisonRow], fmt: str) -> str:
    """Render rows as ``csv``, ``json`` or ``markdown`` text (``table`` is :func:`comparison_table`)."""
    formatter = _FORMATTERS.get(fmt)
    if formatter is None:
        raise ReportError(f"unknown comparison format {fmt!r}; expected one of: {', '.join(COMPARE_FORMATS)}.")
    return formatter(rows)


def _as_json(rows: Sequence[ComparisonRow]) -> str:
    return json.dumps({"studies": comparison_records(rows)}, indent=2, allow_nan=False, default=str) + "\n"


def _as_csv(rows: Sequence[ComparisonRow]) -> str:
    buffer = io.StringIO()
    names = list(ComparisonRow.__dataclass_fields__)
    writer = csv.DictWriter(buffer, fieldnames=names)
    writer.writeheader()
    for record in comparison_records(rows):
        record["best_params"] = json.dumps(record["best_params"], default=str)
        record["pareto_trials"] = json.dumps(list(record["pareto_trials"]))
        writer.writerow(record)
    return buffer.getvalue()


def _as_markdown(rows: Sequence[ComparisonRow]) -> str:
    cells = [display_cells(r) for r in rows]
    header = list(DISPLAY_COLUMNS)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


_FORMATTERS: dict[str, Callable[[Sequence[ComparisonRow]], str]] = {
    "csv": _as_csv,
    "json": _as_json,
    "markdown": _as_markdown,
}

DISPLAY_COLUMNS = (
    "study",
    "model",
    "data",
    "metric",
    "trials c/p/f",
    "best ± fold std",
    "best params",
    "gap",
    "worst group",
    "time",
    "s/trial",
)


def display_cells(row: ComparisonRow) -> list[str]:
    """The row as the strings a table shows, in ``DISPLAY_COLUMNS`` order."""
    best = fmt_number(row.best_value)
    if row.best_value is not None and row.best_std is not None:
        best += f" ± {fmt_number(row.best_std)}"
    if row.best_trial is not None:
        best += f" (#{row.best_trial})"
    if row.pareto_trials:
        best = "Pareto " + ", ".join(f"#{n}" for n in row.pareto_trials)
    params = ", ".join(f"{k}={fmt_number(v) if v is not None else None}" for k, v in row.best_params.items()) or "-"
    return [
        row.study,
        row.model,
        row.data,
        row.metric,
        f"{row.complete}/{row.pruned}/{row.failed}",
        best,
        params,
        fmt_number(row.gap),
        fmt_number(row.worst_group),
        duration(row.wall_seconds),
        fmt_number(row.seconds_per_trial),
    ]


def comparison_table(rows: Sequence[ComparisonRow]) -> Table:
    """A rich table of the rows, for a terminal."""
    table = Table(title="Study comparison (trials: complete/pruned/failed; time: first start to last end)")
    for column in DISPLAY_COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*display_cells(row))
    return table


def fmt_number(value: Any, *, none: str = "-") -> str:
    """Numbers to 5 significant digits; ``none`` stands for a missing value."""
    if isinstance(value, float):
        return f"{value:.5g}"
    return none if value is None else str(value)


def duration(seconds: float | None) -> str:
    """Seconds as ``m:ss`` or ``h:mm:ss``."""
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
