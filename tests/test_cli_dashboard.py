"""``tuner dashboard`` (``tuner/cli/dashboard.py``). The dashboard itself serves a browser in tests/browser and
reads a study that workers write in tests/contract/test_read_while_run.py."""

from __future__ import annotations


def test_dashboard_help_works_without_starting_a_server(run_cli):
    result = run_cli("dashboard", "--help")
    assert result.code == 0
    assert "--storage" in result.out and "--port" in result.out


def test_dashboard_redraws_the_diagnostics_figures_of_tuner_studies_before_it_serves(
    write_spec, tmp_path, run_cli, monkeypatch
):
    import optuna
    import optuna_dashboard

    from tuner.store import open_storage

    spec = write_spec({"budget": {"n_trials": 2}})
    assert run_cli("run", spec, "-q").code == 0
    storage = open_storage(f"sqlite:///{tmp_path / 'tuner.db'}")
    optuna.create_study(study_name="not-tuner", storage=storage)  # no diagnostics: left alone
    key = "dashboard:plot_data:tuner-gap-vs-validation:0"
    study_id = storage.get_study_id_from_name(optuna.get_all_study_names(storage)[0])
    storage.set_study_system_attr(study_id, key, "stale")
    served = []
    monkeypatch.setattr(optuna_dashboard, "run_server", lambda storage, host, port: served.append(port))
    assert run_cli("dashboard", "--storage", spec, "--port", "8123").code == 0
    assert served == [8123]
    assert storage.get_study_system_attrs(study_id)[key] != "stale"  # redrawn from the trials
    other = storage.get_study_id_from_name("not-tuner")
    assert not any(k.startswith("dashboard:plot_data:") for k in storage.get_study_system_attrs(other))
