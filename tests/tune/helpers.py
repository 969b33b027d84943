"""Checks shared by the tune tests: what the storage and MLflow must hold after a study."""

from __future__ import annotations

import optuna
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from projects.tune.mlflow_trials import RUN_STATUS


def child_runs(parent_run_id: str) -> list:
    client = MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, f"tags.`mlflow.parentRunId` = '{parent_run_id}'", max_results=1000)


def parent_run(study_name: str):
    client = MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(
        experiments, f"tags.`optuna.study_name` = '{study_name}' AND tags.`projects.entry_point` = 'tune'"
    )
    assert len(runs) >= 1, f"no tune run for study {study_name}"
    return runs


def assert_trials_match_runs(study: optuna.Study, parent_run_id: str, n: int) -> None:
    """Exactly n finished trials, n child runs, one per trial, and each run's status matches its state."""
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == n
    assert sorted(t.number for t in trials) == list(range(n))
    assert all(t.state in RUN_STATUS for t in trials), [t.state for t in trials]
    runs = child_runs(parent_run_id)
    assert len(runs) == n
    by_number = {int(r.data.tags["optuna.trial_number"]): r for r in runs}
    assert sorted(by_number) == list(range(n)), "a trial has no child run or two"
    for t in trials:
        run = by_number[t.number]
        assert run.info.run_id == t.user_attrs["mlflow_run_id"]
        assert run.data.tags["optuna.state"] == t.state.name
        assert run.data.tags["optuna.study_name"] == study.study_name
        assert run.info.status == RUN_STATUS[t.state], (t.number, t.state, run.info.status)
        if t.state != TrialState.FAIL:
            for key, value in t.params.items():  # the sampled values are the run's params
                assert run.data.params[key] == str(value), (key, run.data.params[key], value)
