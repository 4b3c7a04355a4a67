"""What optuna-dashboard shows of the diagnostics, through its own API: a markdown note on each trial
and plotly figures on the study page.

The note is written with the trial's diagnostics (:func:`tuner.diagnostics.record`), in the same
storage transaction on RDB storages, so it costs no extra write. The figures (gap vs validation
score, per-group scores of the best trials, the learning curve, a network's epoch losses) are
saved with ``optuna_dashboard.save_plotly_graph_object`` at the end of ``tuner run``, by
``tuner diagnose`` and by ``tuner dashboard`` before it serves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from tuner.store import schema, top_trials

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

# Trials whose per-group scores the group figure compares.
BEST_TRIALS = 5
GAP_FIGURE, GROUP_FIGURE, CURVE_FIGURE, EPOCH_FIGURE = schema.DASHBOARD_FIGURES


def num(value: Any) -> str:
    """A number to 4 significant digits ("-" for None or a non-number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else str(value)
    return f"{value:.4g}"


def note(attrs: Mapping[str, Any], *, number: int, metric: str) -> str:
    """A trial's diagnostics as markdown: flags, train/validation/gap, fold scores and groups."""
    flags = attrs.get(schema.FLAGS) or []
    lines = [
        f"### Trial {number}: {metric}",
        "",
        f"**Flags:** {', '.join(flags) if flags else 'none'} · **gap** (train − validation) "
        f"{num(attrs.get(schema.GAP))}",
        "",
        "| | mean | ± std | folds |",
        "|---|---|---|---|",
    ]
    for name, mean, std, folds in (
        ("train", schema.TRAIN_MEAN, schema.TRAIN_STD, schema.TRAIN_SCORES),
        ("validation", schema.VAL_MEAN, schema.VAL_STD, schema.VAL_SCORES),
    ):
        scores = ", ".join(num(s) for s in attrs.get(folds) or [])
        lines.append(f"| {name} | {num(attrs.get(mean))} | {num(attrs.get(std))} | {scores} |")
    groups = attrs.get(schema.GROUP_SCORES)
    if isinstance(groups, dict) and groups:
        lines += ["", f"| group | validation {metric} |", "|---|---|"]
        lines += [f"| {name} | {num(score)} |" for name, score in groups.items()]
        lines += [
            "",
            f"Worst group **{attrs.get(schema.WORST_GROUP_NAME)}** ({num(attrs.get(schema.WORST_GROUP_SCORE))}); "
            f"largest gap between groups {num(attrs.get(schema.GROUP_GAP))}.",
        ]
    warnings = attrs.get(schema.WARNINGS)
    if warnings:
        lines += ["", f"{len(warnings)} model warning(s); see the user attribute `{schema.WARNINGS}`."]
    return "\n".join(lines) + "\n"


def note_attrs(trial_id: int, body: str) -> dict[str, Any]:
    """The study system attributes optuna-dashboard reads a trial's note from (its first version)."""
    size = schema.DASHBOARD_NOTE_CHUNK
    chunks = [body[i : i + size] for i in range(0, len(body), size)] or [""]
    attrs: dict[str, Any] = {schema.DASHBOARD_NOTE_VERSION.format(trial_id=trial_id): 1}
    attrs.update(
        {schema.DASHBOARD_NOTE_TEXT.format(trial_id=trial_id, index=i): chunk for i, chunk in enumerate(chunks)}
    )
    return attrs


def figures(study: optuna.Study) -> dict[str, Figure]:
    """The study's diagnostics figures, by graph-object id; those without data are left out."""
    import plotly.graph_objects as go  # start-up time: plotly takes a second; only a run's end and diagnose draw

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    attrs = study.user_attrs
    metric = str(attrs.get(schema.METRIC, "score"))
    out: dict[str, Figure] = {}
    points = [t for t in trials if _is_num(t.user_attrs.get(schema.GAP)) and _is_num(t.user_attrs.get(schema.VAL_MEAN))]
    if points:
        figure = go.Figure()
        for flag, colour in (("overfit", "#d62728"), ("underfit", "#1f77b4"), ("none", "#7f7f7f")):
            chosen = [t for t in points if (t.user_attrs.get(schema.FLAGS) or ["none"])[0] == flag]
            if chosen:
                figure.add_trace(
                    go.Scatter(
                        x=[t.user_attrs[schema.VAL_MEAN] for t in chosen],
                        y=[t.user_attrs[schema.GAP] for t in chosen],
                        mode="markers",
                        name=flag,
                        marker={"color": colour, "size": 9},
                        text=[f"trial {t.number}" for t in chosen],
                    )
                )
        figure.add_hline(y=0, line_dash="dot", line_color="#999")
        figure.update_layout(
            title=f"Train − validation gap vs validation {metric} (each point a trial)",
            xaxis_title=f"validation {metric} (higher is better)",
            yaxis_title="gap: train − validation (lower is better)",
        )
        out[GAP_FIGURE] = figure
    best = [t for t in top_trials(study, BEST_TRIALS) if isinstance(t.user_attrs.get(schema.GROUP_SCORES), dict)]
    if best:
        figure = go.Figure(
            [
                go.Bar(
                    x=list(t.user_attrs[schema.GROUP_SCORES]),
                    y=list(t.user_attrs[schema.GROUP_SCORES].values()),
                    name=f"trial {t.number}",
                )
                for t in best
            ]
        )
        figure.update_layout(
            title=f"Validation {metric} per group of the {len(best)} best trials",
            barmode="group",
            xaxis_title="group",
            yaxis_title=f"validation {metric}",
        )
        out[GROUP_FIGURE] = figure
    curve = attrs.get(schema.LEARNING_CURVE)
    if isinstance(curve, dict) and curve.get(schema.CURVE_SIZES):
        sizes = curve[schema.CURVE_SIZES]
        folds = [v if isinstance(v, list) else [v] for v in curve.get(schema.CURVE_VAL_SCORES) or []]
        figure = go.Figure()
        figure.add_trace(
            go.Scatter(x=sizes, y=curve.get(schema.CURVE_TRAIN_SCORES), mode="lines+markers", name="train")
        )
        figure.add_trace(
            go.Scatter(
                x=sizes,
                y=[sum(f) / len(f) for f in folds],
                error_y={"array": [_std(f) for f in folds]},
                mode="lines+markers",
                name="validation (± fold std)",
            )
        )
        figure.update_layout(
            title=f"Learning curve of trial #{curve.get(schema.CURVE_TRIAL)}",
            xaxis_title="training rows",
            yaxis_title=metric,
        )
        out[CURVE_FIGURE] = figure
    networks = [t for t in trials if t.user_attrs.get(schema.EPOCH_CURVES)]
    if networks:
        shown = next((t for t in top_trials(study, len(trials)) if t.user_attrs.get(schema.EPOCH_CURVES)), networks[-1])
        out[EPOCH_FIGURE] = epoch_figure(shown)
    return out


def epoch_figure(trial: optuna.trial.FrozenTrial) -> Figure:
    """A network's per-epoch train and validation losses, one pair of lines per fold."""
    import plotly.graph_objects as go  # start-up time: see figures()

    figure = go.Figure()
    for index, fold in enumerate(trial.user_attrs.get(schema.EPOCH_CURVES) or []):
        for key, dash in ((schema.EPOCH_TRAIN_LOSS, "solid"), (schema.EPOCH_VAL_LOSS, "dash")):
            losses = fold.get(key) or []
            figure.add_trace(
                go.Scatter(
                    x=list(range(1, len(losses) + 1)),
                    y=losses,
                    mode="lines",
                    line={"dash": dash},
                    name=f"fold {index + 1} {key.replace('_', ' ')}",
                )
            )
    figure.update_layout(
        title=f"Loss per epoch of trial #{trial.number} (dashed: validation split of the training fold)",
        xaxis_title="epoch",
        yaxis_title="loss (lower is better)",
    )
    return figure


def publish(study: optuna.Study) -> list[str]:
    """Save the diagnostics figures on the study for optuna-dashboard; returns their ids."""
    from optuna_dashboard import save_plotly_graph_object  # start-up time: it imports a web framework

    drawn = figures(study)
    for graph_id, figure in drawn.items():
        save_plotly_graph_object(study, figure, graph_object_id=graph_id)
    return list(drawn)


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _std(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
