"""``tuner models`` and ``tuner schema`` (``tuner/cli/catalog.py``): the catalog with its spaces, and the
spec's JSON Schema."""

from __future__ import annotations

import json

from tuner.models import all_entries
from tuner.spec import StudySpec


def test_tuner_schema_prints_a_json_schema(run_cli):
    result = run_cli("schema")
    assert result.code == 0, result.err
    schema = json.loads(result.out)
    properties = schema["properties"]
    assert {"name", "data", "model", "space", "cv", "metric", "sampler", "pruner", "budget", "seed"} <= set(properties)
    assert "spec_path" not in properties
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"name", "data", "model"}
    param = schema["$defs"]["ParamSpec"]
    assert set(param["properties"]["type"]["enum"]) == {"float", "int", "categorical", "fixed"}
    assert schema == {**StudySpec.model_json_schema(), "$schema": schema["$schema"], "title": schema["title"]}


def test_models_lists_every_catalog_entry_with_its_space(run_cli):
    result = run_cli("models")
    assert result.code == 0, result.err
    for entry in all_entries():
        assert entry.name in result.out
        assert entry.description in result.out  # brackets such as tuner[lightgbm] are text, not markup
        for task in entry.tasks:
            for param in entry.space(task):
                assert param in result.out, (entry.name, param)


def test_tuner_schema_documents_the_pipeline_steps(run_cli):
    schema = json.loads(run_cli("schema").out)
    pipeline = json.dumps(schema["properties"]["pipeline"])
    assert '"enum": ["onehot", "impute", "scale", "pca", "select"]' in pipeline
    assert "model__param" in schema["properties"]["pipeline"]["description"]
