"""The ``tuner`` command. Each command group lives in its own module and stays thin over the library."""

from __future__ import annotations

import logging
import sys

import click
import optuna

from tuner._version import __version__
from tuner.cli import catalog, dashboard, diagnose, inspect, model, report, run, worker
from tuner.errors import TunerError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", "-V", prog_name="tuner")
@click.option("--debug", is_flag=True, help="Show Python tracebacks and Optuna's own log lines.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Hyperparameter studies from a YAML spec: run, resume, inspect, dashboard."""
    ctx.obj = {"debug": debug}
    # tuner prints its own progress; Optuna's per-trial INFO lines would duplicate it.
    optuna.logging.set_verbosity(logging.DEBUG if debug else logging.ERROR)


for _module in (run, worker, inspect, catalog, dashboard, report, model, diagnose):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Entry point: turn user mistakes into one paragraph and exit code 2, never a traceback."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="tuner", standalone_mode=False)
    except TunerError as exc:
        if debug:
            raise
        click.echo(f"Error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
