"""``tuner run`` and ``tuner validate`` (``tuner/cli/run.py``): the resolved setup, and bad values refused with
exit code 2."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from support import alias_bomb


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


# --- hostile study files: refused fast, in little memory, with nothing written ----------------------


@pytest.mark.parametrize("command", ["validate", "run"])
def test_an_alias_bomb_is_refused_and_nothing_is_written(tmp_path, run_cli, command):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb(levels=5))  # 9**5 values: small enough that the old code stored it
    result = run_cli(command, bomb)
    assert result.code == 2
    assert f"{bomb}, line 11: the YAML expands to more than 10000 values" in result.err
    assert len(result.err) < 600 and "Traceback" not in result.err
    assert not (tmp_path / "tuner.db").exists()


@pytest.mark.parametrize("command", ["validate", "run"])
def test_an_alias_bomb_is_refused_before_scikit_learn_is_imported(tmp_path, command):
    """The whole process stays under 100 MB (importing scikit-learn alone takes 250 MB)."""
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb(levels=9))  # 9**9 values once expanded
    # A fresh parent, so the children's peak memory is this command's alone.
    measure = textwrap.dedent(
        """
        import resource, subprocess, sys
        done = subprocess.run([sys.executable, "-m", "tuner", *sys.argv[1:]], capture_output=True, text=True)
        print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        sys.stderr.write(done.stderr)
        """
    )
    done = subprocess.run([sys.executable, "-c", measure, command, str(bomb)], capture_output=True, text=True)
    code, max_rss_kb = map(int, done.stdout.split())
    assert code == 2, done.stderr
    assert "expands to more than 10000 values" in done.stderr
    assert max_rss_kb < 100_000
    assert not (tmp_path / "tuner.db").exists()


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_study_file_that_is_not_utf8_is_one_paragraph_and_exit_code_2(tmp_path, run_cli, command):
    path = tmp_path / "study.yaml"
    path.write_bytes(b"name: x\ndata: {source: 'sklearn:iris'}\nmodel: knn\n\xff\n")
    result = run_cli(command, path)
    assert result.code == 2
    assert result.err.startswith(f"Error: {path}, line 4, column 1 (byte 50): 0xff is not UTF-8")
    assert "save it as UTF-8" in result.err and "Traceback" not in result.err
    assert not (tmp_path / "tuner.db").exists()
