"""``tuner run`` and ``tuner validate`` (``tuner/cli/run.py``): the resolved setup, and bad values refused with
exit code 2."""

from __future__ import annotations


def test_validate_prints_the_resolved_setup_and_writes_nothing(write_spec, run_cli, tmp_path):
    spec = write_spec({"space": {"C": {"type": "float", "low": 0.01, "high": 5, "log": True}}})
    result = run_cli("validate", spec)
    assert result.code == 0, result.err
    assert "valid" in result.out
    assert "569 rows × 30 features, classification, 2 classes" in result.out
    assert "stratified with 3 folds" in result.out
    assert "C: float [0.01, 5] log" in result.out, "overrides are shown merged onto the defaults"
    assert "class_weight: one of None, balanced" in result.out
    assert not (tmp_path / "tuner.db").exists()


def test_run_rejects_bad_cli_values_with_exit_code_2(write_spec, run_cli):
    result = run_cli("run", write_spec(), "--n-trials", "0")
    assert result.code == 2
    assert "--n-trials" in result.err and "Traceback" not in result.err
