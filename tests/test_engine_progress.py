"""Progress (``tuner/engine/_progress.py``): what ``tuner run`` prints while trials finish."""

from __future__ import annotations


def test_progress_lines_show_trials_best_and_eta_when_not_a_tty(write_spec, run_cli):
    result = run_cli("run", write_spec())
    lines = [line for line in result.err.splitlines() if line.startswith("trial ")]
    assert len(lines) == 4
    assert "4/4 done" in lines[-1] and "best " in lines[-1] and "ETA" in lines[-1]
    assert "Best trial #" in result.out
