"""Progress of a running study: trials done/total, best so far, elapsed, ETA.

A live rich bar on a terminal; one plain line per finished trial otherwise (CI logs, pipes).
"""

from __future__ import annotations

import math
import time

import optuna
from optuna.trial import TrialState
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

from tuner.engine._budget import is_counted
from tuner.store import is_feasible, schema


def _clock(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "--:--"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class StudyProgress:
    """An Optuna callback that shows progress; use it as a context manager around ``optimize``."""

    def __init__(
        self,
        *,
        total: int,
        done: int,
        timeout: float | None,
        console: Console | None = None,
        enabled: bool = True,
    ) -> None:
        self.total = total
        self.done = done
        self.timeout = timeout
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.started = time.monotonic()
        self.finished_here = 0
        self.best: tuple[int, float] | None = None
        self._live = enabled and self.console.is_terminal
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} trials"),
            TextColumn("best {task.fields[best]}"),
            TextColumn("elapsed {task.fields[elapsed]} ETA {task.fields[eta]}"),
            console=self.console,
            transient=False,
        )
        self._task = self._bar.add_task("tuning", total=total, completed=done, best="-", elapsed="00:00", eta="--:--")

    def __enter__(self) -> StudyProgress:
        if self._live:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live:
            self._bar.stop()

    def eta(self) -> float | None:
        elapsed = time.monotonic() - self.started
        remaining = max(self.total - self.done, 0)
        estimate = elapsed / self.finished_here * remaining if self.finished_here else None
        if self.timeout is not None:
            left = max(self.timeout - elapsed, 0.0)
            estimate = left if estimate is None else min(estimate, left)
        return estimate

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.user_attrs.get(schema.LOST):
            # Its retry is counted when it finishes; counting both showed 21/20 done.
            self._say(f"trial {trial.number} not counted: {trial.user_attrs.get(schema.ERROR)}")
            return
        if not is_counted(trial):  # stopped by Ctrl-C or SIGTERM
            return
        self.done += 1
        self.finished_here += 1
        # Several objectives have no single best; a trial violating a constraint is never the best.
        single = len(study.directions) == 1
        if single and trial.state == TrialState.COMPLETE and is_feasible(trial) and math.isfinite(trial.values[0]):
            value = trial.values[0]
            better = self.best is None or (
                value > self.best[1] if study.direction.name == "MAXIMIZE" else value < self.best[1]
            )
            if better:
                self.best = (trial.number, value)
        if not self.enabled:
            return
        best = f"{self.best[1]:.5g} (#{self.best[0]})" if self.best else "-"
        elapsed = _clock(time.monotonic() - self.started)
        eta = _clock(self.eta())
        if self._live:
            self._bar.update(self._task, completed=self.done, best=best, elapsed=elapsed, eta=eta)
            return
        self._say(
            f"trial {trial.number} {_outcome(trial)} | {self.done}/{self.total} done | best {best} | "
            f"elapsed {elapsed} | ETA {eta}"
        )

    def _say(self, line: str) -> None:
        if self.enabled:
            self.console.print(line, highlight=False, soft_wrap=True)


def _outcome(trial: optuna.trial.FrozenTrial) -> str:
    if trial.state == TrialState.COMPLETE:
        return "value " + ", ".join(f"{v:.5g}" for v in trial.values)
    if trial.state == TrialState.PRUNED:
        return "pruned"
    error = trial.user_attrs.get(schema.ERROR)
    return f"failed ({error})" if error else "failed"


class RaceProgress:
    """Progress of the final choice's re-scoring (:func:`tuner.racing.race`): a bar on a terminal,
    one plain line per (candidate, repeat) otherwise."""

    def __init__(self, *, console: Console | None = None, enabled: bool = True) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.started = time.monotonic()
        self._live = enabled and self.console.is_terminal
        self._bar = Progress(
            TextColumn("[bold]final choice"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} candidate CV repeats"),
            TextColumn("elapsed {task.fields[elapsed]} ETA {task.fields[eta]}"),
            console=self.console,
            transient=False,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> RaceProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._bar.stop()

    def __call__(self, done: int, total: int, number: int, repeat: int, seconds: float) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        eta = _clock(elapsed / done * (total - done))
        if self._live:
            if self._task is None:
                self._task = self._bar.add_task("race", total=total, elapsed="00:00", eta="--:--")
                self._bar.start()
            self._bar.update(self._task, completed=done, elapsed=_clock(elapsed), eta=eta)
            return
        self.console.print(
            f"final choice: trial {number} re-scored on extra CV repeat {repeat} ({seconds:.1f} s) | {done}/{total} "
            f"done | elapsed {_clock(elapsed)} | ETA {eta}",
            highlight=False,
            soft_wrap=True,
        )
