"""``tuner models`` and ``tuner schema``: what can go in a spec."""

from __future__ import annotations

import json

import click
from rich.markup import escape

from tuner.cli.common import out


@click.command()
def models() -> None:
    """List the model catalog with each model's default search space."""
    # Start-up time: scikit-learn comes with the catalog and the search package.
    from tuner.models import all_entries
    from tuner.search import describe

    console = out()
    console.print("Models: use the name as `model:`; override or add ranges under `space:`.\n")
    for entry in all_entries():
        # Descriptions hold brackets (`tuner[lightgbm]`) that rich would read as markup.
        console.print(f"[bold]{entry.name}[/] ({', '.join(entry.tasks)}): {escape(entry.description)}", highlight=False)
        shared = entry.classifier_space == entry.regressor_space or len(entry.tasks) == 1
        for task in entry.tasks[:1] if shared else entry.tasks:
            if not shared:
                console.print(f"  for {task}:")
            for name, param in entry.space(task).items():
                console.print(f"    {name}: {describe(param)}", highlight=False)
        console.print()


@click.command()
def schema() -> None:
    """Print the JSON Schema of study files (for editor validation and completion)."""
    from tuner.spec import StudySpec  # start-up time: pydantic builds the spec models

    document = StudySpec.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "tuner study spec"
    click.echo(json.dumps(document, indent=2))


COMMANDS = [models, schema]
