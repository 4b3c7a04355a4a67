"""``tuner dashboard`` (``tuner/cli/dashboard.py``). The dashboard itself serves a browser in tests/browser and
reads a study that workers write in tests/contract/test_read_while_run.py."""

from __future__ import annotations


def test_dashboard_help_works_without_starting_a_server(run_cli):
    result = run_cli("dashboard", "--help")
    assert result.code == 0
    assert "--storage" in result.out and "--port" in result.out
