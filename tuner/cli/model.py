"""``tuner refit`` and ``tuner predict``: from the best trial to a model file, and back to predictions."""

from __future__ import annotations

from pathlib import Path

import click

from tuner.cli.common import fmt_value, locate, out, out_path_option, storage_option
from tuner.outputs import file_in
from tuner.store import redact


@click.command()
@click.argument("study")
@storage_option
@out_path_option("Model file (joblib). Default: <study>.joblib in the current folder. The card goes next to it.")
@click.option("--trial", type=click.IntRange(min=0), help="Refit this trial (required for multi-objective studies).")
@click.option("--force", is_flag=True, help="Overwrite an existing model and card.")
@click.option(
    "--mlflow",
    metavar="URI|PATH",
    help="Also log the model and its card as artifacts of the study's MLflow parent run; needs tuner[mlflow].",
)
def refit(
    study: str, storage: str | None, out_path: Path | None, trial: int | None, force: bool, mlflow: str | None
) -> None:
    """Fit the best configuration of STUDY on all tuning rows, score the held-out rows, save model + card.

    STUDY is a spec file, a study name on --storage, or NAME@STORAGE.
    """
    from tuner.refit import refit_best  # start-up time: scikit-learn comes with it

    ref = locate(study, storage)
    target = out_path if out_path is not None else file_in(Path.cwd(), f"{ref.name}.joblib", force=force)
    result = refit_best(ref, out=target, trial=trial, force=force, mlflow=mlflow, progress=True)
    card = result.card
    console = out()
    cv = card["cv"]
    console.print(
        f"Refit trial #{card['study']['trial']} of {ref.name} ({card['model']}): CV {cv['metric']} = "
        f"{fmt_value(cv['mean'])} ± {fmt_value(cv['std'])} over {cv['folds']} folds, "
        f"fitted on {card['data']['tuning_rows']} rows.",
        highlight=False,
    )
    if card.get("iterations"):
        it = card["iterations"]
        console.print(f"  {it['param']} = {it['value']} (mean best iteration of the folds)", highlight=False)
    if card["test"]:
        test = card["test"]
        console.print(f"  held-out test {test['metric']} = {fmt_value(test['score'])} on {test['rows']} rows")
    else:
        console.print("  no held-out test rows (set `cv.holdout_test` in the spec to keep some out of tuning)")
    console.print(f"Wrote {result.model_path} and {result.card_path}", highlight=False)
    if mlflow:
        console.print(f"  logged to MLflow ({redact(mlflow)}) as the study's parent run's `model/` artifacts")
    # The hash to hand on with the file: `predict --sha256` on a machine without this key trusts it.
    console.print(f"  model SHA-256 {card['model_sha256']}, card signed with model key {card['signature']['key_id']}")


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@out_path_option("CSV to write (default: stdout).")
@click.option("--card", "card_path", type=click.Path(path_type=Path), help="Model card (default: next to MODEL).")
@click.option(
    "--sha256",
    metavar="HEX",
    help="Load MODEL if it has this SHA-256, instead of checking its card's signature with this machine's model "
    "key: for a model made elsewhere, whose hash you got through a channel you trust.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
def predict(
    model: Path, data: Path, out_path: Path | None, card_path: Path | None, sha256: str | None, force: bool
) -> None:
    """Predict the rows of DATA (CSV/Parquet) with MODEL, after checking the model file and the columns.

    MODEL is loaded only if its card's signature verifies with this machine's model key
    ($TUNER_MODEL_KEY, else ~/.config/tuner/model.key) and the file matches the card, or if it has
    the SHA-256 given with --sha256.
    """
    from tuner.modelfile import predict_file  # start-up time: scikit-learn comes with it

    predictions = predict_file(model, data, out=out_path, card_path=card_path, sha256=sha256, force=force)
    if out_path is None:
        click.echo(predictions.to_csv(index=False), nl=False)
    else:
        click.echo(f"Wrote {len(predictions)} predictions to {out_path}", err=True)


COMMANDS = [refit, predict]
