"""kill -9 of a tune process in the middle of a trial: its parent and trial runs end KILLED, and the next
invocation marks the orphaned trial FAIL and runs the queue to the end; no trial stays RUNNING."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from projects.tune.objective import DEAD_WORKER
from tests.faults.helpers import CLASSIFY, finish, launch, runs, wait_status

TINY = ",".join(f"{k}={v}" for k, v in CLASSIFY.items() if k not in ("epochs", "register")) + ",epochs=2"


def test_killed_tune_trial_is_closed_and_failed_then_the_study_goes_on(tmp_path):
    journal = str(tmp_path / "journal.log")
    params = {"study": "classify_resnet18", "n_trials": "1", "overrides": TINY, "storage": journal}
    code, _ = finish(launch("tune", params, fault="kill_at_step=3"))  # in trial 0's first epoch
    assert code != 0
    (parent,) = runs(filter_string="tags.`projects.entry_point` = 'tune'")
    wait_status(parent.info.run_id, "KILLED")
    (trial_run,) = runs(filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    wait_status(trial_run.info.run_id, "KILLED")

    code, err = finish(launch("tune", params))
    assert code == 0, err[-2000:]
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    study = optuna.load_study(study_name=None, storage=storage)  # the only study there
    states = [t.state for t in study.trials]
    assert states[0] == TrialState.FAIL and study.trials[0].user_attrs["error"] == DEAD_WORKER
    assert states == [TrialState.FAIL, TrialState.COMPLETE]
    assert not runs(filter_string="attributes.status = 'RUNNING'")
