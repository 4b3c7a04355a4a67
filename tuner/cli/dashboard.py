"""``tuner dashboard``: optuna-dashboard on the study storage."""

from __future__ import annotations

import click

from tuner.cli.common import storage_option, storage_url_of
from tuner.store import open_storage, redact


@click.command()
@storage_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind; localhost unless told.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
def dashboard(storage: str | None, host: str, port: int) -> None:
    """Open optuna-dashboard on the storage (Ctrl-C to stop)."""
    import optuna_dashboard  # start-up time: it imports a web framework

    url = storage_url_of(storage)
    opened = open_storage(url)
    click.echo(f"optuna-dashboard for {redact(url)} at http://{host}:{port}/ (Ctrl-C to stop)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            f"Warning: listening on {host}, so other machines can reach the dashboard; it has no login and "
            "can edit studies (notes, attributes). Use --host 127.0.0.1 and an SSH tunnel instead.",
            err=True,
        )
    optuna_dashboard.run_server(opened, host=host, port=port)


COMMANDS = [dashboard]
