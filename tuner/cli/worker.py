"""``tuner worker`` (join a study from any machine) and ``tuner doctor`` (zombie trials, storage health)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
from rich.table import Table

from tuner.cli.common import STORAGE_ENV, locate, out, storage_file_option, storage_value
from tuner.engine import diagnose_storage
from tuner.engine import repair as repair_trials
from tuner.errors import StorageDamaged
from tuner.store import DEFAULT_HEARTBEAT, Heartbeat, redact

_heartbeat_option = click.option(
    "--heartbeat",
    "interval",
    type=click.IntRange(min=1),
    default=DEFAULT_HEARTBEAT.interval,
    show_default=True,
    help="Seconds between heartbeats of the running trial.",
)
_grace_option = click.option(
    "--grace",
    type=click.IntRange(min=2),
    default=DEFAULT_HEARTBEAT.grace,
    show_default=True,
    help="Seconds without a heartbeat after which a running trial counts as lost.",
)


def _heartbeat(interval: int, grace: int) -> Heartbeat:
    if grace <= interval:
        raise click.BadParameter(
            f"--grace ({grace}) must be longer than --heartbeat ({interval})", param_hint="--grace"
        )
    return Heartbeat(interval=interval, grace=grace)


@click.command()
@click.argument("spec", type=click.Path(path_type=Path))
@click.option("--storage", metavar="URL", help=f"The study's shared storage (default: spec's, or ${STORAGE_ENV}).")
@storage_file_option
@click.option("--study-name", help="Study name (overrides `name`).")
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE", help="Override a spec field; repeatable.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Start no trial after this many seconds.")
@click.option("--allow-space-change", is_flag=True, help="Join even though the search space changed.")
@_heartbeat_option
@_grace_option
def worker(
    spec: Path,
    storage: str | None,
    storage_file: Path | None,
    study_name: str | None,
    overrides: tuple[str, ...],
    timeout: float | None,
    allow_space_change: bool,
    interval: int,
    grace: int,
) -> None:
    """Join the study in SPEC and run trials until its global budget is done.

    Start workers on as many machines as you like, all pointing at one server storage (PostgreSQL,
    MySQL or Redis); they share `budget.n_trials` and never run a trial twice. Keep passwords out of
    the command line with $TUNER_STORAGE or --storage-file.
    """
    from tuner.engine import join_study  # start-up time: scikit-learn comes with it

    logging.basicConfig(format="tuner worker: %(message)s", level=logging.WARNING, stream=sys.stderr)
    heartbeat = _heartbeat(interval, grace)
    try:
        summary = join_study(
            spec,
            storage=storage_value(storage, storage_file),
            overrides=overrides,
            study_name=study_name,
            timeout=timeout,
            heartbeat=heartbeat,
            allow_space_change=allow_space_change,
        )
    except KeyboardInterrupt:
        click.echo("Interrupted: the running trial was marked as interrupted; other workers go on.", err=True)
        sys.exit(130)
    running = summary.running
    click.echo(
        f"Worker done: ran {summary.ran} trial(s); study {summary.study} ({redact(summary.url)}) has {summary.done} "
        f"of {summary.n_trials} trials done" + (f", {running} still running elsewhere." if running else ".")
    )


@click.command()
@click.argument("study")
@click.option("--storage", metavar="URL|PATH", help=f"Storage of STUDY (default: the spec's, or ${STORAGE_ENV}).")
@storage_file_option
@click.option("--repair", is_flag=True, help="Mark zombie trials FAIL with the reason and retry each once.")
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Also treat trials RUNNING longer than this as zombies (workers elsewhere without heartbeat).",
)
@_grace_option
def doctor(
    study: str, storage: str | None, storage_file: Path | None, repair: bool, older_than: float | None, grace: int
) -> None:
    """Check the storage of STUDY (a name or its spec file) and list its RUNNING trials.

    A RUNNING trial is a zombie when its worker process on this machine is gone or its heartbeat is
    older than --grace seconds. Exit code 1 while zombies or failed checks remain.
    """
    ref = locate(study, storage, storage_file)
    name, url = ref.name, ref.url
    console = out()
    try:
        found = diagnose_storage(name, url, heartbeat=Heartbeat(interval=1, grace=grace), older_than=older_than)
    except StorageDamaged as exc:
        # The damage is what doctor found: a failed check, then what to do about it (exit code 1).
        console.print(f"Storage {redact(url)}", highlight=False)
        console.print(f"  BAD integrity: {exc.found}", highlight=False)
        raise
    console.print(f"Storage {redact(url)}", highlight=False)
    for check in found.checks:
        console.print(f"  {'ok ' if check.ok else 'BAD'} {check.name}: {check.detail}", highlight=False)
    counts = ", ".join(f"{n} {state}" for state, n in found.counts.items() if n) or "no trials"
    console.print(f"Study {name}: {counts}", highlight=False)
    if found.running:
        table = Table(title="Running trials")
        for column in ("#", "worker", "started", "heartbeat age", "status", "why"):
            table.add_column(column, overflow="fold")
        for trial in found.running:
            age = "-" if trial.heartbeat_age is None else f"{trial.heartbeat_age:.0f} s"
            started = trial.started.strftime("%Y-%m-%d %H:%M:%S") if trial.started else "-"
            table.add_row(str(trial.number), trial.worker, started, age, trial.status, trial.reason)
        console.print(table)
    zombies = found.zombies
    if zombies and repair:
        fixed = repair_trials(found.stored, zombies)
        console.print(
            f"Repaired {len(fixed)} zombie trial(s) ({', '.join(f'#{n}' for n in fixed) or 'none'}): marked FAIL "
            "and queued once more with the same parameters; the next `tuner run` or `tuner worker` runs them.",
            highlight=False,
        )
        zombies = [z for z in zombies if z.number not in fixed]
    elif zombies:
        console.print(
            f"{len(zombies)} zombie trial(s): {', '.join(f'#{z.number}' for z in zombies)}. "
            f"Repair them with: tuner doctor {study} --repair",
            highlight=False,
        )
    if zombies or not all(check.ok for check in found.checks):
        sys.exit(1)


COMMANDS = [worker, doctor]
