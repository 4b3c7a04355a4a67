"""``tuner dashboard``: optuna-dashboard on the study storage."""

from __future__ import annotations

import click
import optuna

from tuner.cli.common import storage_option, storage_url_of
from tuner.store import open_storage, redact, schema, study_names


@click.command()
@storage_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind; localhost unless told.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
def dashboard(storage: str | None, host: str, port: int) -> None:
    """Open optuna-dashboard on the storage (Ctrl-C to stop)."""
    import optuna_dashboard  # start-up time: it imports a web framework

    url = storage_url_of(storage)
    opened = open_storage(url)
    _refresh_figures(opened)
    click.echo(f"optuna-dashboard for {redact(url)} at http://{host}:{port}/ (Ctrl-C to stop)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            f"Warning: listening on {host}, so other machines can reach the dashboard; it has no login and "
            "can edit studies (notes, attributes). Use --host 127.0.0.1 and an SSH tunnel instead.",
            err=True,
        )
    optuna_dashboard.run_server(opened, host=host, port=port)


def _refresh_figures(storage: optuna.storages.BaseStorage) -> None:
    """Redraw the diagnostics figures of every tuner study, so studies still running (or run by an
    older tuner) show current ones; a storage that refuses writes keeps the figures it has."""
    from tuner.diagnostics import publish  # start-up time: scikit-learn comes with it

    for name in study_names(storage):
        study = optuna.load_study(study_name=name, storage=storage)
        if schema.SPEC not in study.user_attrs:
            continue  # not made by tuner: its trials carry no diagnostics
        try:
            publish(study)
        except Exception as exc:  # a read-only file or a server's refusal: serve what is stored
            click.echo(
                f"Note: the diagnostics figures of study {name!r} were not redrawn ({type(exc).__name__}).", err=True
            )


COMMANDS = [dashboard]
