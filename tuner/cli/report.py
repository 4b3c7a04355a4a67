"""``tuner compare`` and ``tuner report``: studies side by side, and one study as an HTML page."""

from __future__ import annotations

from pathlib import Path

import click

from tuner.cli.common import locate, out, out_path_option, storage_option
from tuner.outputs import file_in
from tuner.report import COMPARE_FORMATS, compare_snapshots, comparison_table, format_comparison
from tuner.store import PLOT_TRIALS, read_study, read_summary


@click.command()
@click.argument("studies", nargs=-1, required=True, metavar="STUDY...")
@storage_option
@click.option("--format", "fmt", type=click.Choice(COMPARE_FORMATS), default="table", show_default=True)
def compare(studies: tuple[str, ...], storage: str | None, fmt: str) -> None:
    """Compare studies: model, data, metric, trials, best ± fold spread, params, gap, time.

    Each STUDY is a spec file, a study name on --storage, or NAME@STORAGE (a URL, a .db/.log
    file, a folder holding tuner.db, or a spec file), so studies from different storages can be
    compared in one table.
    """
    rows = compare_snapshots(read_summary(ref.name, ref.url) for ref in (locate(study, storage) for study in studies))
    if fmt == "table":
        console = out()
        if not console.is_terminal:
            # Pipes and CI logs get rich's 80 columns by default; 11 columns need more to stay legible.
            console.width = max(console.width, 200)
        console.print(comparison_table(rows))
    else:
        click.echo(format_comparison(rows, fmt), nl=False)


@click.command()
@click.argument("study")
@storage_option
@out_path_option("HTML file to write. Default: <study>-report.html in the current folder.")
@click.option(
    "--png", "png_dir", type=click.Path(path_type=Path), help="Also write one PNG per chart into this folder."
)
@click.option(
    "--max-trials",
    type=click.IntRange(min=0),
    default=PLOT_TRIALS,
    show_default=True,
    help="Plot at most this many trials: the best, every new best and the top ones always, the rest evenly "
    "sampled by state and trial number (the charts say so). 0 plots every trial.",
)
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def report(
    study: str, storage: str | None, out_path: Path | None, png_dir: Path | None, max_trials: int, force: bool
) -> None:
    """Write a self-contained HTML report of STUDY (opens offline): history, importances, slices, diagnostics.

    PNG images (--png) need kaleido and a Chrome/Chromium on this machine.
    """
    from tuner.report import write_report  # start-up time: plotly takes a second to import

    ref = locate(study, storage)
    name = ref.name
    snap = read_study(name, ref.url, max_trials=max_trials or None)
    target = out_path if out_path is not None else file_in(Path.cwd(), f"{name}-report.html", force=force)
    if png_dir is not None:
        png_dir.mkdir(parents=True, exist_ok=True)
    content = write_report(snap, target, png_dir=png_dir, force=force)
    click.echo(f"Wrote {target} ({len(content.plots)} charts)", err=True)
    if png_dir is not None:
        click.echo(f"Wrote {len(content.plots)} PNG files into {png_dir}", err=True)
    for title, reason in sorted(content.skipped.items()):
        click.echo(f"  not shown: {title} ({reason})", err=True)


COMMANDS = [compare, report]
