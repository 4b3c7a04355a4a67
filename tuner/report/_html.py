"""One study as a self-contained HTML report (opens offline), and its charts as PNG images.

Everything here takes a :class:`~tuner.store.StudySnapshot` (plain data read once from a
storage), never a live study. Plots come from Optuna's visualization module and plotly; the HTML
embeds plotly.js, so a report opens offline.

Trial user attributes the plots use when present (written by the objective and diagnostics; names
in :mod:`tuner.store.schema`): fold scores (``val_scores``/``val_std``), ``train_scores`` and
``gap`` (train − validation), ``group_scores`` (``{group: score}`` or ``{group: [fold scores]}``)
and ``worst_group_score``. A learning curve is read from the best trial's ``learning_curve``
attribute or the study's ``tuner:learning_curve`` attribute: ``{"train_sizes": [...],
"train_scores": [...], "val_scores": [...]}`` where each score entry is a number or a list of fold
scores.
"""

from __future__ import annotations

import html
import statistics
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
import plotly.graph_objects as go
import plotly.io as pio
from optuna import visualization as vis
from optuna.importance import get_param_importances
from plotly.graph_objects import Figure

from tuner.diagnostics import answers, study_remedies
from tuner.errors import ReportError
from tuner.outputs import file_in, output_file
from tuner.report._compare import display_cells, duration, fmt_number, number, row_of
from tuner.setup import PruningPlan, stored_epoch_cap
from tuner.store import StudySnapshot, schema

_TOP_SLICES = 4


@dataclass(frozen=True)
class Plot:
    """One chart of a report; ``key`` names its PNG file."""

    key: str
    title: str
    figure: Figure
    note: str = ""


@dataclass
class ReportContent:
    """The charts of a report, plus why the missing ones are missing."""

    plots: list[Plot] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def build_plots(snap: StudySnapshot) -> ReportContent:
    """Every chart the study has data for; absent data gives a reason in ``skipped``, not an error."""
    content = ReportContent()
    complete = [t for t in snap.trials if t.state.name == "COMPLETE"]
    if not complete:
        content.skipped["all plots"] = "the study has no complete trial yet"
        return content
    study = snap.to_study()
    sampled = _sample_note(snap)
    for key, title, make in _PLOTS:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = make(study, snap)
            except (ValueError, RuntimeError, ZeroDivisionError) as exc:
                content.skipped[title] = f"{type(exc).__name__}: {exc}"
                continue
        if isinstance(result, str):
            content.skipped[title] = result
            continue
        result, verdict = result if isinstance(result, tuple) else (result, "")
        messages = sorted({str(w.message) for w in caught})
        note = "; ".join([verdict, *messages] if verdict else messages)[:1000]
        if sampled and key not in _ONE_TRIAL:
            note = f"{sampled} {note}".strip()
        result.update_layout(title=title)
        content.plots.append(Plot(key=key, title=title, figure=result, note=note))
    return content


# Charts of one trial (the best), which a sample of the others does not change.
_ONE_TRIAL = frozenset({"groups", "learning_curve"})


def _sample_note(snap: StudySnapshot) -> str:
    """What a chart of a sampled study says about its points ("" when every trial is plotted)."""
    if not snap.sampled or snap.whole is None:
        return ""
    return (
        f"Sampled: {len(snap.trials):,} of {snap.whole.n_trials:,} trials plotted (the best, every new best and "
        "the top trials always; the rest evenly spread by state and trial number)."
    )


def _named(snap: StudySnapshot) -> list[str]:
    """Each objective's name and what is optimised: ``roc_auc (maximize)``, ``gap (minimize)``."""
    return [f"{name} ({direction})" for name, direction in zip(snap.objectives, snap.directions, strict=True)]


def _target(snap: StudySnapshot) -> dict[str, Any]:
    # Optuna's single-objective plots need a target for multi-objective studies: the first one.
    if snap.multi_objective:
        return {"target": lambda t: t.values[0], "target_name": _named(snap)[0]}
    return {"target_name": _named(snap)[0]}


def _history(study: optuna.Study, snap: StudySnapshot) -> Figure | str:
    if snap.multi_objective:
        if len(snap.directions) > 3:
            return "more than 3 objectives"
        return vis.plot_pareto_front(study, target_names=_named(snap))
    return vis.plot_optimization_history(study, target_name=_named(snap)[0])


def _lower_is_better(snap: StudySnapshot, index: int) -> Callable[[optuna.trial.FrozenTrial], float]:
    """Objective ``index`` oriented as Optuna's default importance evaluator (PED-ANOVA) reads a
    target: lower is better, so a maximised objective is negated. Without this, importances of
    a maximised objective would say what makes it *low*."""
    sign = -1.0 if snap.directions[index] == "maximize" else 1.0
    return lambda t: sign * t.values[index]


def _importances(study: optuna.Study, snap: StudySnapshot) -> Figure | str:
    if not _varied_params(snap):
        return "no parameter took more than one value"
    if not snap.multi_objective:
        return vis.plot_param_importances(study, **_target(snap))  # the evaluator follows the study's direction
    figure: Figure | None = None
    with warnings.catch_warnings():
        # The evaluator warns that it reads a target as "lower is better": each one here is oriented so.
        warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator computes")
        for index, name in enumerate(_named(snap)):
            part = vis.plot_param_importances(study, target=_lower_is_better(snap, index), target_name=name)
            figure = part if figure is None else figure.add_traces(part.data)
    assert figure is not None
    return figure


def _parallel(study: optuna.Study, snap: StudySnapshot) -> Figure | str:
    if not _varied_params(snap):
        return "no parameter took more than one value"
    return vis.plot_parallel_coordinate(study, **_target(snap))


def _slices(study: optuna.Study, snap: StudySnapshot) -> Figure | str:
    params = _top_params(study, snap)
    if not params:
        return "no parameter took more than one value"
    return vis.plot_slice(study, params=params, **_target(snap))


def _intermediate(study: optuna.Study, snap: StudySnapshot) -> Figure | str:
    if not any(t.intermediate_values for t in snap.trials):
        return "no trial reported per-fold values"
    figure = vis.plot_intermediate_values(study)
    pruner = snap.spec.get("pruner") or {}
    plan = PruningPlan.of(
        str(pruner.get("fidelity", "folds")),
        str(pruner.get("name", "median")),
        multi_objective=snap.multi_objective,
        epochs_per_fold=stored_epoch_cap(snap.spec),
        maximize=snap.directions[:1] != ("minimize",),
    )
    steps, values = plan.axis_titles(snap.metric)
    figure.update_layout(xaxis_title=steps, yaxis_title=values)
    return figure


def _varied_params(snap: StudySnapshot) -> list[str]:
    values: dict[str, set[str]] = {}
    for trial in snap.trials:
        if trial.state.name == "COMPLETE":
            for name, value in trial.params.items():
                values.setdefault(name, set()).add(repr(value))
    return [name for name, seen in values.items() if len(seen) > 1]


def _top_params(study: optuna.Study, snap: StudySnapshot) -> list[str]:
    varied = _varied_params(snap)
    if len(varied) <= _TOP_SLICES:
        return varied
    try:
        target = _lower_is_better(snap, 0) if snap.multi_objective else None
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator computes")
            ranked = get_param_importances(study, params=varied, target=target)
    except (ValueError, RuntimeError):
        return varied[:_TOP_SLICES]
    return list(ranked)[:_TOP_SLICES]


# Flags as colours that stand out on white (a continuous scale made small gaps white, invisible).
_FLAG_COLOURS = {"overfit": "#d62728", "underfit": "#1f77b4", "overfit, underfit": "#9467bd", "no flag": "#555555"}


def _flag_of(trial: optuna.trial.FrozenTrial) -> str:
    return ", ".join(trial.user_attrs.get(schema.FLAGS) or []) or "no flag"


def _by_flag(trials: Sequence[optuna.trial.FrozenTrial]) -> dict[str, list[optuna.trial.FrozenTrial]]:
    groups: dict[str, list[optuna.trial.FrozenTrial]] = {}
    for trial in trials:
        groups.setdefault(_flag_of(trial), []).append(trial)
    return groups


def _train_vs_val(study: optuna.Study, snap: StudySnapshot) -> Figure | str:
    trials = [t for t in snap.finished() if _train_val(t) is not None]
    if not trials:
        return "no trial recorded train scores (diagnostics)"
    figure = go.Figure()
    for flag, chosen in _by_flag(trials).items():
        pairs = [_train_val(t) or (0.0, 0.0) for t in chosen]
        figure.add_trace(
            go.Scatter(
                x=[v for _, v in pairs],
                y=[t for t, _ in pairs],
                mode="markers",
                name=flag,
                text=[
                    f"trial {t.number}<br>gap {a - b:.4g}<br>{flag}" for t, (a, b) in zip(chosen, pairs, strict=True)
                ],
                marker={"color": _FLAG_COLOURS.get(flag, "#555555"), "size": 9, "line": {"width": 1, "color": "#222"}},
            )
        )
    values = [x for t in trials for x in _train_val(t) or ()]
    low, high = min(values), max(values)
    figure.add_trace(go.Scatter(x=[low, high], y=[low, high], mode="lines", name="train = validation"))
    figure.update_layout(
        xaxis_title=f"validation {snap.metric} (higher is better)",
        yaxis_title=f"train {snap.metric}",
        legend={"orientation": "h", "y": -0.2},
    )
    return figure


def _gap(study: optuna.Study, snap: StudySnapshot) -> Figure | str:
    trials = [t for t in snap.finished() if _train_val(t) is not None]
    if not trials:
        return "no trial recorded train scores (diagnostics)"
    figure = go.Figure()
    # Markers on an axis fitted to the gaps, with a zero line: a gap of 0.001 beside one of 0.3 is
    # a visible point at its value, not a bar one pixel high.
    for flag, chosen in _by_flag(trials).items():
        gaps = [a - b for a, b in (_train_val(t) or (0.0, 0.0) for t in chosen)]
        figure.add_trace(
            go.Scatter(
                x=[t.number for t in chosen],
                y=gaps,
                mode="markers",
                name=flag,
                text=[f"gap {g:.4g}" for g in gaps],
                marker={"color": _FLAG_COLOURS.get(flag, "#555555"), "size": 9, "line": {"width": 1, "color": "#222"}},
            )
        )
    figure.add_hline(y=0, line_dash="dot", line_color="#999")
    figure.update_layout(xaxis_title="trial", yaxis_title="gap: train − validation (lower is better)")
    return figure


def _train_val(trial: optuna.trial.FrozenTrial) -> tuple[float, float] | None:
    train = _mean(trial.user_attrs.get(schema.TRAIN_SCORES))
    val = _mean(trial.user_attrs.get(schema.VAL_SCORES))
    if train is None or val is None:
        return None
    return train, val


def _mean(value: Any) -> float | None:
    if isinstance(value, list | tuple):
        numbers = [v for v in (_mean(x) for x in value) if v is not None]
        return statistics.fmean(numbers) if numbers else None
    return number(value)


def _groups(study: optuna.Study, snap: StudySnapshot) -> Figure | str:
    best = snap.best_trial or next((t for t in snap.finished() if t.user_attrs.get(schema.GROUP_SCORES)), None)
    scores = best.user_attrs.get(schema.GROUP_SCORES) if best else None
    if not isinstance(scores, dict) or not scores:
        return "no trial recorded per-group scores"
    assert best is not None
    names = [str(k) for k in scores]
    values = [_mean(v) for v in scores.values()]
    figure = go.Figure(go.Bar(x=names, y=values, name=f"trial {best.number}"))
    figure.update_layout(
        xaxis_title="group", yaxis_title=f"validation {snap.metric} (trial {best.number}; higher is better)"
    )
    return figure


def _worst_group(study: optuna.Study, snap: StudySnapshot) -> Figure | str:
    # The overall score is the trial's mean validation score, whatever the study optimises: with
    # `objective: worst_group` the objective value is the worst group's score itself.
    points = [
        (t.number, number(t.user_attrs.get(schema.WORST_GROUP_SCORE)), number(t.user_attrs.get(schema.VAL_MEAN)))
        for t in snap.finished()
    ]
    points = [p for p in points if p[1] is not None and p[2] is not None]
    if not points:
        return "no trial recorded a worst-group score"
    numbers, worst, overall = zip(*points, strict=True)
    low, high = min(*worst, *overall), max(*worst, *overall)
    figure = go.Figure(
        go.Scatter(x=overall, y=worst, mode="markers", text=[f"trial {n}" for n in numbers], name="trials")
    )
    figure.add_trace(go.Scatter(x=[low, high], y=[low, high], mode="lines", name="worst group = overall"))
    figure.update_layout(
        xaxis_title=f"overall validation {snap.metric} (higher is better)",
        yaxis_title=f"worst group's validation {snap.metric} (higher is better)",
    )
    return figure


def _learning_curve(study: optuna.Study, snap: StudySnapshot) -> Figure | tuple[Figure, str] | str:
    curve = snap.learning_curve
    if curve is None or not curve.get(schema.CURVE_SIZES):
        return "no learning curve stored (see `tuner diagnose`)"
    sizes = curve[schema.CURVE_SIZES]
    figure = go.Figure()
    for key, name in ((schema.CURVE_TRAIN_SCORES, "train"), (schema.CURVE_VAL_SCORES, "validation")):
        if curve.get(key):
            figure.add_trace(go.Scatter(x=sizes, y=[_mean(v) for v in curve[key]], mode="lines+markers", name=name))
    figure.update_layout(xaxis_title="training rows", yaxis_title=f"{snap.metric} (higher is better)")
    if curve.get(schema.CURVE_VERDICT):
        return figure, str(curve[schema.CURVE_VERDICT])
    return figure


# A maker returns the chart, optionally with a note shown above it, or why it cannot be drawn.
_PlotMaker = Callable[["optuna.Study", StudySnapshot], "Figure | tuple[Figure, str] | str"]
_PLOTS: tuple[tuple[str, str, _PlotMaker], ...] = (
    ("history", "Optimization history", _history),
    ("importances", "Parameter importances", _importances),
    ("parallel", "Parallel coordinates", _parallel),
    ("slices", "Slices of the most important parameters", _slices),
    ("intermediate", "Intermediate values per fold (pruning)", _intermediate),
    ("train_vs_validation", "Train vs validation score", _train_vs_val),
    ("gap", "Generalization gap per trial", _gap),
    ("groups", "Per-group scores of the best trial", _groups),
    ("worst_group", "Worst-group score vs overall score", _worst_group),
    ("learning_curve", "Learning curve of the best configuration", _learning_curve),
)


def render_html(snap: StudySnapshot, content: ReportContent) -> str:
    """The report page: a summary, the charts (plotly.js embedded once) and the skipped ones."""
    parts = [_HEAD.format(title=html.escape(f"tuner report: {snap.name}")), _summary_html(snap)]
    for index, plot in enumerate(content.plots):
        parts.append(f'<section id="{html.escape(plot.key)}"><h2>{html.escape(plot.title)}</h2>')
        if plot.note:
            parts.append(f'<p class="note">{html.escape(plot.note)}</p>')
        # The first chart carries plotly.js inline (no CDN), so the page works offline.
        parts.append(plot.figure.to_html(full_html=False, include_plotlyjs=index == 0, div_id=f"plot-{plot.key}"))
        parts.append("</section>")
    if content.skipped:
        items = "".join(
            f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in sorted(content.skipped.items())
        )
        parts.append(f"<section><h2>Not shown</h2><ul>{items}</ul></section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
.note {{ color: #666; font-size: 90%; }}
</style></head><body>
<h1>{title}</h1>"""


def _summary_html(snap: StudySnapshot) -> str:
    row = row_of(snap)
    facts = {
        "storage": snap.storage,
        "model": row.model,
        "data": row.data,
        # Scikit-learn scorers are all higher-is-better; what the study optimises is the next row.
        "metric": f"{row.metric} (higher is better)",
        "optimised": ", ".join(_named(snap)),
        "trials": ", ".join(f"{v} {k}" for k, v in snap.counts().items() if v) or "none",
        "best": display_cells(row)[5],
        "time": f"{duration(row.wall_seconds)} (mean {fmt_number(row.seconds_per_trial)} s per trial)",
        "created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if snap.sampled and snap.whole is not None:
        facts["plotted"] = (
            f"{len(snap.trials):,} of {snap.whole.n_trials:,} trials, sampled (`--max-trials 0` plots all)"
        )
    refit = snap.refit_model
    if refit is not None:
        facts["refit model"] = (
            f"{refit.get(schema.REFIT_PATH)} (trial #{refit.get(schema.REFIT_TRIAL)}, "
            f"test {_short(refit.get(schema.REFIT_TEST_SCORE))})"
        )
    if snap.multi_objective:
        facts["Pareto trials"] = ", ".join(f"#{n}" for n in snap.pareto_numbers) or "-"
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts.items())
    best = snap.best_trial
    params = ""
    if best is not None:
        cells = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(_short(v))}</td></tr>" for k, v in best.params.items()
        )
        attrs = {k: v for k, v in best.user_attrs.items() if k in _SUMMARY_ATTRS}
        cells += "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(_short(v))}</td></tr>" for k, v in attrs.items()
        )
        params = f"<h2>Best trial #{best.number}</h2><table>{cells}</table>"
    return f"{_questions_html(snap)}<table>{rows}</table>{params}{_flags_html(snap)}"


def _questions_html(snap: StudySnapshot) -> str:
    """The four training-data questions answered in one paragraph, the remedies' snippets below it."""
    found = study_remedies(snap)
    best = snap.best_trial or (snap.trial(snap.pareto_numbers[0]) if snap.pareto_numbers else None)
    said = answers(best, metric=snap.metric, curve=snap.learning_curve, remedies=found)
    if not said:
        return ""
    text = " ".join(f"<b>{html.escape(q.capitalize())}?</b> {html.escape(a)}" for q, a in said.items())
    snippets = "".join(
        f"<li>{html.escape(step.text)}<pre>{html.escape(step.snippet)}</pre></li>"
        for remedy in found
        for step in remedy.steps
        if step.snippet
    )
    listed = f"<p>Spec changes to try (paste over the study file):</p><ul>{snippets}</ul>" if snippets else ""
    return f'<section id="questions"><h2>The training data</h2><p>{text}</p>{listed}</section>'


def _flags_html(snap: StudySnapshot) -> str:
    """Which trials each flag marks (the charts colour them the same way)."""
    flagged: dict[str, list[int]] = {}
    for trial in snap.finished():
        for flag in trial.user_attrs.get(schema.FLAGS) or []:
            flagged.setdefault(str(flag), []).append(trial.number)
    if not any(schema.FLAGS in t.user_attrs for t in snap.finished()):
        return ""
    rows = "".join(
        f"<tr><th>{html.escape(flag)}</th><td>{', '.join(f'#{n}' for n in numbers)}</td></tr>"
        for flag, numbers in sorted(flagged.items())
    )
    among = f" (among the {len(snap.trials):,} sampled trials)" if snap.sampled else ""
    return f'<h2>Flags per trial{among}</h2><table id="flags">{rows or "<tr><td>no trial is flagged</td></tr>"}</table>'


def _short(value: Any) -> str:
    """Numbers to 5 significant digits, also inside lists and dicts; None as ``None``."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    return "None" if value is None else fmt_number(value)


_SUMMARY_ATTRS = (
    schema.FLAGS,
    schema.VAL_SCORES,
    schema.VAL_STD,
    schema.TRAIN_SCORES,
    schema.GAP,
    schema.GROUP_SCORES,
    schema.WORST_GROUP_SCORE,
)


def write_report(
    snap: StudySnapshot,
    out: Path,
    *,
    png_dir: Path | None = None,
    force: bool = False,
) -> ReportContent:
    """Write the HTML report to ``out`` (and one PNG per chart into ``png_dir``).

    Raises:
        ReportError: when PNG export is asked for but kaleido or a Chrome/Chromium is missing.
        OutputError: when ``out`` exists (without ``force``) or a PNG would leave ``png_dir``.
    """
    target = output_file(out, force=force)
    content = build_plots(snap)
    pngs = [file_in(png_dir, f"{p.key}.png", force=force) for p in content.plots] if png_dir else []
    target.write_text(render_html(snap, content), encoding="utf-8")
    if pngs:
        write_pngs([p.figure for p in content.plots], pngs)
    return content


def write_pngs(figures: Sequence[Figure], paths: Sequence[Path]) -> None:
    """Static images through kaleido (which drives a local Chrome/Chromium)."""
    try:
        import kaleido  # noqa: F401  # optional extra: tuner[png]
    except ImportError:
        raise ReportError(
            "PNG export needs the kaleido package: `pip install 'tuner[png]'` (or `pip install kaleido`). "
            "The HTML report was written; it does not need kaleido."
        ) from None
    try:
        pio.write_images(list(figures), [str(p) for p in paths])
    except Exception as exc:  # kaleido/choreographer raise many types; all mean "no usable browser"
        raise ReportError(
            f"PNG export failed ({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}). "
            "kaleido needs Chrome or Chromium: install it (Debian: `apt-get install chromium`) or point the "
            "BROWSER_PATH environment variable at the browser. The HTML report was written."
        ) from exc
