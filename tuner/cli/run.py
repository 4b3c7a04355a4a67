"""``tuner run`` and ``tuner validate``."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tuner.cli.common import STORAGE_ENV, fmt_value, out, storage_file_option, storage_value
from tuner.engine import counted
from tuner.store import counts, objective_names, pareto_front, redact, schema, storage_url

if TYPE_CHECKING:
    from tuner.engine import StudyResult


@click.command()
@click.argument("spec", type=click.Path(path_type=Path))
@click.option("--n-trials", type=click.IntRange(min=1), help="Total trials of the study (overrides budget.n_trials).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds for this run.")
@click.option("--seed", type=int, help="Study seed (overrides `seed`).")
@click.option("--storage", metavar="URL|PATH", help=f"Optuna storage URL or file (default: spec's, or ${STORAGE_ENV}).")
@storage_file_option
@click.option("--study-name", help="Study name (overrides `name`).")
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE", help="Override a spec field; repeatable.")
@click.option("--allow-space-change", is_flag=True, help="Resume even though the search space changed.")
@click.option(
    "--jobs",
    "-j",
    "n_jobs",
    type=click.IntRange(min=1),
    help="Worker processes on this machine, sharing the budget (overrides budget.n_jobs).",
)
@click.option(
    "--dask",
    metavar="local|tcp://HOST:PORT",
    help="Run the workers as tasks on a Dask cluster; `local` starts one here with --jobs workers.",
)
@click.option(
    "--mlflow",
    metavar="URI|PATH",
    help="Log each trial as an MLflow run under one parent run per study (sqlite:///mlflow.db, a .db file, "
    "http://HOST:5000); needs tuner[mlflow].",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def run(
    spec: Path,
    n_trials: int | None,
    timeout: float | None,
    seed: int | None,
    storage: str | None,
    storage_file: Path | None,
    study_name: str | None,
    overrides: tuple[str, ...],
    allow_space_change: bool,
    n_jobs: int | None,
    dask: str | None,
    mlflow: str | None,
    quiet: bool,
) -> None:
    """Run the study in SPEC, or resume it: completed trials count towards the budget."""
    from tuner.spec import load_spec  # start-up time: pydantic is not needed by every command

    # Read before scikit-learn and the engine are imported, so a bad or hostile file is refused in
    # a fraction of the memory and time (run_study takes the parsed spec as it is).
    loaded = load_spec(spec, overrides=overrides)
    from tuner.engine import StudyInterrupted, run_study  # start-up time: scikit-learn comes with it

    value = storage_value(storage, storage_file)
    url = storage_url(value) if value else None
    try:
        result = run_study(
            loaded,
            n_trials=n_trials,
            timeout=timeout,
            seed=seed,
            storage=url,
            study_name=study_name,
            allow_space_change=allow_space_change,
            n_jobs=n_jobs,
            dask=dask,
            mlflow=mlflow,
            progress=not quiet,
        )
    except StudyInterrupted as stop:
        by_state = _summary(stop.result, spec)
        how = "Interrupted" if stop.signum == signal.SIGINT else f"Stopped by {signal.Signals(stop.signum).name}"
        click.echo(
            f"{how}: {by_state['complete']} complete trials are stored and any running trial was marked as "
            f"interrupted. Resume with: tuner run {spec}" + (f" --study-name {study_name}" if study_name else ""),
            err=True,
        )
        sys.exit(128 + stop.signum)  # the shell's code for a process ended by that signal: 130, 143
    _summary(result, spec)


def _summary(result: StudyResult, spec: Path) -> dict[str, int]:
    """Print what the run did and the best trial; returns the trials per state."""
    console = out()
    trials = result.study.get_trials(deepcopy=False)  # one read for the counts and the budget
    by_state, done = counts(trials), counted(trials)
    total = result.spec.budget.n_trials
    console.print(
        f"Study [bold]{result.study.study_name}[/] ({redact(result.storage_url)}): ran {result.ran} trial(s) now; "
        f"{by_state['complete']} complete, {by_state['pruned']} pruned, {by_state['fail']} failed of budget {total}.",
        highlight=False,
    )
    if result.ran == 0 and done >= total:
        console.print("The study had already reached its budget; raise --n-trials to run more.")
    elif result.exhausted and done < total:
        console.print(
            "The sampler has tried every configuration it can propose (the grid is done), so the run stopped."
        )
    choice = result.choice
    best = None if choice is None else choice.trial
    if choice is None or best is None:
        console.print(_no_best(result, spec, by_state["complete"]), highlight=False)
        return by_state
    # The objective's label ("worst_group", "roc_auc − 0.5×gap"), which is the metric by default.
    metric = objective_names(result.study.user_attrs, 1)[0]
    spread = best.user_attrs.get(schema.VAL_STD)
    spread_text = f" ± {fmt_value(spread)}" if spread is not None else ""
    console.print(f"Best trial #{best.number}: {metric} = {fmt_value(best.value)}{spread_text}", highlight=False)
    for name, value in best.params.items():
        console.print(f"  {name} = {fmt_value(value, none='None')}", highlight=False)
    for line in choice.lines(metric):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(f"Next: tuner show {spec}   |   tuner dashboard --storage {spec}", highlight=False)
    return by_state


def _no_best(result: StudyResult, spec: Path, complete: int) -> str:
    front = pareto_front(result.study)
    if front:
        return f"{len(front)} trial(s) on the Pareto front (several objectives, no single best); see: tuner best {spec}"
    if complete:
        return "No complete trial meets the constraints yet."
    return "No complete trial yet."


@click.command()
@click.argument("spec", type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE", help="Override a spec field; repeatable.")
def validate(spec: Path, overrides: tuple[str, ...]) -> None:
    """Check SPEC and its data without running a trial or touching the storage."""
    from tuner.spec import load_spec  # start-up time: pydantic is not needed by every command

    # Read before scikit-learn is imported, so a bad or hostile file is refused in a fraction of the
    # memory and time.
    loaded = load_spec(spec, overrides=overrides)
    # Start-up time: scikit-learn comes with these.
    from tuner.objective import make_objective
    from tuner.search import describe
    from tuner.setup import build

    ctx = build(loaded)
    make_objective(ctx)  # imports a custom `objective:` so a bad path fails here, not at the first trial
    console = out()
    data = ctx.dataset
    console.print(f"{spec}: valid. Study {loaded.name!r}, model {loaded.model!r}, metric {ctx.metric.name!r}.")
    console.print(
        f"Data: {len(data.y)} rows × {data.X.shape[1]} features, {data.task}"
        + (f", {data.n_classes} classes" if data.n_classes else "")
        + f"; CV: {ctx.cv.scheme} with {ctx.cv.n_splits} folds.",
        highlight=False,
    )
    console.print("Search space:")
    for name, param in ctx.space.items():
        console.print(f"  {name}: {describe(param)}", highlight=False)


COMMANDS = [run, validate]
