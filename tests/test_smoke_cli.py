from __future__ import annotations

import json


def test_run_then_best_json_reports_the_stored_best(write_spec, run_cli):
    spec = write_spec()
    first = run_cli("run", spec, "-q")
    assert first.code == 0, first.err
    best = run_cli("best", spec, "--json")
    assert best.code == 0, best.err
    record = json.loads(best.out)["best_trial"]
    values = [json.loads(run_cli("export", spec, "--format", "json").out)["trials"][i]["value"] for i in range(4)]
    assert record["value"] == max(values)
