"""``tuner models`` and ``tuner schema``: what can go in a spec."""

from __future__ import annotations

import json

import click
from rich.table import Table

from tuner.cli.common import out


@click.command()
def models() -> None:
    """List the model catalog with each model's default search space."""
    from tuner import space as space_mod
    from tuner.models import all_entries

    table = Table(title="Models (use the name in `model:`; override ranges under `space:`)", show_lines=True)
    for column in ("model", "tasks", "default search space"):
        table.add_column(column, overflow="fold")
    for entry in all_entries():
        spaces: list[str] = []
        for task in entry.tasks:
            lines = "\n".join(f"{k}: {space_mod.describe(p)}" for k, p in entry.space(task).items())
            prefix = f"[{task}]\n" if len(entry.tasks) > 1 and entry.classifier_space != entry.regressor_space else ""
            if prefix or not spaces:
                spaces.append(prefix + lines)
        table.add_row(f"{entry.name}\n{entry.description}", ", ".join(entry.tasks), "\n".join(spaces))
    out().print(table)


@click.command()
def schema() -> None:
    """Print the JSON Schema of study files (for editor validation and completion)."""
    from tuner.spec import StudySpec

    document = StudySpec.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "tuner study spec"
    click.echo(json.dumps(document, indent=2))


COMMANDS = [models, schema]
