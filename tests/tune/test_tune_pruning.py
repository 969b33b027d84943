"""Pruning really stops the bad region's trials, and MLflow tells pruned, failed and complete apart."""

from __future__ import annotations

import optuna
import pytest
from helpers import assert_trials_match_runs, child_runs, parent_run
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from projects.core.config import from_dict
from projects.tune import run as tune
from projects.tune.spec import make_pruner
from projects.tune.storage import DEFAULT_JOURNAL
from tests.svg_checks import legend_texts

EPOCHS = 6


def tune_run(**values) -> dict[str, float]:
    return tune.run(from_dict(tune.Config, values))


def test_median_pruner_stops_bad_region_and_mlflow_matches(write_study) -> None:
    # x < 0.7 is good, 0.7 <= x <= 0.95 bad (must be pruned), x > 0.95 raises (FAIL)
    path = write_study(
        base={"epochs": EPOCHS, "bad_above": 0.7, "fail_above": 0.95},
        registry={"name": "toy-model", "metric": "final_score"},
    )
    summary = tune_run(study=path, n_trials=12)
    study = optuna.load_study(
        study_name="toy",
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(DEFAULT_JOURNAL)),
    )
    trials = study.get_trials()
    states = {t.state for t in trials}
    assert states == {TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL}, states
    for t in trials:
        x = t.params["x"]
        if x > 0.95:
            assert t.state == TrialState.FAIL
        elif x >= 0.7 and t.number >= 4:  # after the median pruner's 3 startup trials have completed
            assert t.state == TrialState.PRUNED, (t.number, x)
        elif x < 0.7:
            assert t.state == TrialState.COMPLETE, (t.number, x)
        if t.state == TrialState.PRUNED:
            # pruned at the end of the first epoch after warm-up: nothing trained beyond it
            assert list(t.intermediate_values) == [1], t.intermediate_values
        if t.state == TrialState.COMPLETE:
            assert len(t.intermediate_values) == EPOCHS
    pruned_epochs = sum(len(t.intermediate_values) for t in trials)
    assert summary["epochs_trained"] == pruned_epochs < EPOCHS * len(trials)
    assert summary["trials_pruned"] == sum(t.state == TrialState.PRUNED for t in trials) >= 2

    (parent,) = parent_run("toy")
    assert parent.info.status == "FINISHED"
    assert_trials_match_runs(study, parent.info.run_id, 12)
    client = MlflowClient()
    names = set()
    for run in child_runs(parent.info.run_id):
        curve = client.get_metric_history(run.info.run_id, "score")
        number = int(run.data.tags["optuna.trial_number"])
        trial = trials[number]
        assert len(curve) == len(trial.intermediate_values)  # full curve up to where it stopped
        # The runs table tells trials apart by name (number and sampled values) and shows how they ended.
        suffix = {TrialState.PRUNED: " [pruned]", TrialState.FAIL: " [failed]"}.get(trial.state, "")
        assert (
            run.info.run_name == f"trial-{number} x={trial.params['x']:.3g} y={trial.params['y']:.3g}{suffix}"
        )
        names.add(run.info.run_name)
        # The objective's own column shows every trial's value: a pruned one's last reported epoch.
        if trial.state == TrialState.PRUNED:
            assert run.data.metrics["score"] == trial.intermediate_values[1]
        if trial.state == TrialState.COMPLETE:
            assert run.data.metrics["score"] == trial.value
    assert len(names) == 12
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert artifacts == {
        f"plots/{n}.svg" for n in ("optimization_history", "intermediate_values", "param_importances")
    }
    history = client.download_artifacts(parent.info.run_id, "plots/optimization_history.svg")
    assert "Best Value" in legend_texts(open(history).read())
    assert float(parent.data.params["best.x"]) == study.best_params["x"]
    # The tune run shows the best trial's objective under the metric's name; optuna-dashboard labels it.
    assert parent.data.metrics["score"] == study.best_value and "best_value" not in parent.data.metrics
    assert study.metric_names == ["score"]

    champion = client.get_model_version_by_alias("toy-model", "champion")
    assert champion.run_id == study.best_trial.user_attrs["mlflow_run_id"]

    # A re-run resumes the study and adds trials, with fresh params (not the first run's sampler stream).
    tune_run(study=path, n_trials=3)
    study = optuna.load_study(
        study_name="toy",
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(DEFAULT_JOURNAL)),
    )
    assert len(study.trials) == 15
    first = {round(t.params["x"], 12) for t in study.trials[:12]}
    assert not first & {round(t.params["x"], 12) for t in study.trials[12:]}
    assert len(parent_run("toy")) == 2
    assert len(client.search_model_versions("name = 'toy-model'")) == 1  # same best: not registered twice


def test_hyperband_is_selectable() -> None:
    pruner = make_pruner({"type": "hyperband"}, epochs=27)
    assert isinstance(pruner, optuna.pruners.HyperbandPruner)
    assert pruner._max_resource == 27
    median = make_pruner({"type": "median"}, epochs=100)
    assert isinstance(median, optuna.pruners.MedianPruner) and median._n_warmup_steps == 10


@pytest.mark.parametrize("pruner", ["hyperband", "none"])
def test_pruner_override(write_study, pruner: str) -> None:
    path = write_study(base={"epochs": 3})
    summary = tune_run(study=path, n_trials=4, pruner=pruner, register=False)
    assert summary["trials_run"] == 4
    if pruner == "none":
        assert summary["trials_pruned"] == 0 and summary["epochs_trained"] == 12


def test_trial_failing_before_its_run_still_gets_a_failed_child_run(write_study) -> None:
    # x > 1 is rejected by the toy Config: such trials fail before the entry's run starts
    path = write_study(search_space={"x": {"type": "float", "low": 0.0, "high": 2.0}})
    tune_run(study=path, n_trials=6, register=False)
    study = optuna.load_study(
        study_name="toy",
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(DEFAULT_JOURNAL)),
    )
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert failed and all("x must be in [0, 1]" in t.user_attrs["error"] for t in failed)
    (parent,) = parent_run("toy")
    assert_trials_match_runs(study, parent.info.run_id, 6)
    # Its stand-in run says why, like every run's description.
    for trial in failed:
        run = MlflowClient().get_run(trial.user_attrs["mlflow_run_id"])
        note = run.data.tags["mlflow.note.content"]
        assert "failed before its run started" in note and "x must be in [0, 1]" in note
