"""The ``tuner`` command group (``tuner/cli/__init__.py``): version and the list of commands.

Each command's own tests are in ``test_cli_<module>.py``; bad input of every kind in ``test_errors.py``.
"""

from __future__ import annotations

import tuner


def test_version(run_cli):
    result = run_cli("--version")
    assert result.code == 0
    assert result.out.strip() == f"tuner, version {tuner.__version__}"


def test_help_lists_the_commands(run_cli):
    result = run_cli("--help")
    assert result.code == 0
    for command in ("run", "validate", "models", "schema", "list", "show", "best", "export", "dashboard"):
        assert f"  {command} " in result.out, command
