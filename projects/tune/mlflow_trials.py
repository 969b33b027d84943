"""The per-trial MLflow integration (optuna-integration's MLflowCallback is deprecated and logs only final
values): each trial *is* the entry point's own tracked run, started nested under the tune run, so its
params and full per-epoch curves are there up to the epoch where it stopped. This module adds the Optuna
identity as tags and makes the run's status agree with the trial's final state: COMPLETE -> FINISHED,
PRUNED -> KILLED, FAIL -> FAILED, so a pruned trial never looks like a success (optuna#3524, #5148).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
from collections.abc import Iterator
from typing import Any

import mlflow
import optuna
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME
from optuna.trial import FrozenTrial, TrialState

from projects.core.loop import Callback, Trainer

log = logging.getLogger(__name__)

RUN_STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.FAIL: "FAILED"}
RUN_ID_ATTR = "mlflow_run_id"
PARENT_ATTR = "tune.parent_run_id"
MODEL_URI_ATTR = "model_uri"


def trial_run_name(number: int, params: dict[str, Any]) -> str:
    """``trial-<n> key=value ...``: what sets the trial apart in the runs table (floats to 3 digits)."""
    values = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
    return f"trial-{number} {values}".strip()


# How a trial's run name ends once it did not complete: the runs table shows it at a glance.
STATE_SUFFIX = {TrialState.PRUNED: " [pruned]", TrialState.FAIL: " [failed]"}


def trial_tags(study_name: str, trial: optuna.Trial | FrozenTrial) -> dict[str, str]:
    return {
        "optuna.study_name": study_name,
        "optuna.trial_number": str(trial.number),
        "optuna.state": "RUNNING",
    }


class TrialTracker(Callback):
    """First callback of a trial: tags the entry's run, remembers the per-epoch objective and, when the
    finished model may be the study's best, logs it so the best trial can be registered afterwards."""

    def __init__(self, trial: optuna.Trial, metric: str, registry: dict[str, str] | None = None):
        self.trial = trial
        self.metric = metric
        self.registry = registry
        self.run_id: str | None = None
        self.last_value: float | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        run = mlflow.active_run()
        if run is None:
            return
        self.run_id = run.info.run_id
        self.trial.set_user_attr(RUN_ID_ATTR, self.run_id)
        mlflow.set_tags(trial_tags(self.trial.study.study_name, self.trial))

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if self.metric in logs:
            self.last_value = float(logs[self.metric])

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.registry and self.last_value is not None and self._may_be_best(self.last_value):
            self._log_model(trainer.model)

    def _may_be_best(self, value: float) -> bool:
        """Better than every trial completed so far: the study's final best (or one equal to it) passes."""
        if not math.isfinite(value):
            return False
        study = self.trial.study
        try:
            best = study.best_value
        except ValueError:  # no completed trial yet
            return True
        return value > best if study.direction == optuna.study.StudyDirection.MAXIMIZE else value < best

    def _log_model(self, model: Any) -> None:
        from projects.core.registry import PIP_REQUIREMENTS

        submodule = (self.registry or {}).get("submodule")
        if submodule:
            model = getattr(model, submodule)
        # A CPU copy: the entry may still evaluate the live model on its device after fit.
        model = copy.deepcopy(model).eval().cpu()
        info = mlflow.pytorch.log_model(
            model, name="model", pip_requirements=PIP_REQUIREMENTS, serialization_format="pickle"
        )
        self.trial.set_user_attr(MODEL_URI_ATTR, info.model_uri)


def finish_child_run(run_id: str, study_name: str, frozen: FrozenTrial) -> None:
    """Tag the run with the trial's final state and force the matching run status (e.g. a NaN objective
    is FAIL in Optuna although the entry's run ended normally). The run's own objective metric (e.g.
    ``val_top1``) shows the trial's value: a pruned trial's last reported epoch is the run's last logged
    one, so sorting by it keeps pruned trials in view; the name of a pruned or failed trial's run ends
    with ``[pruned]`` / ``[failed]``."""
    client = MlflowClient()
    client.set_tag(run_id, "optuna.state", frozen.state.name)
    suffix = STATE_SUFFIX.get(frozen.state)
    name = trial_run_name(frozen.number, frozen.params)
    if suffix:
        client.set_tag(run_id, MLFLOW_RUN_NAME, name + suffix)
    expected = RUN_STATUS.get(frozen.state)
    run = client.get_run(run_id)
    if expected and run.info.status != expected:
        client.set_terminated(run_id, expected)


def standin_child_run(
    parent_run_id: str, study_name: str, trial: optuna.Trial, params: dict[str, Any], error: str
) -> str:
    """A trial that failed before its entry run started (e.g. its config is invalid) still gets a child
    run, FAILED, so every trial has exactly one child run."""
    client = MlflowClient()
    parent = client.get_run(parent_run_id)
    run = client.create_run(
        parent.info.experiment_id,
        tags={
            MLFLOW_PARENT_RUN_ID: parent_run_id,
            MLFLOW_RUN_NAME: trial_run_name(trial.number, params),
            "error": error[:4000],
            "mlflow.note.content": f"Trial {trial.number} of study {study_name} failed before its run "
            f"started: {error[:1000]}",
            **trial_tags(study_name, trial),
        },
    )
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id, "FAILED")
    trial.set_user_attr(RUN_ID_ATTR, run.info.run_id)
    return run.info.run_id


@contextlib.contextmanager
def attach_parent(parent_run_id: str) -> Iterator[None]:
    """Make the tune run the active MLflow run of this (worker) process, so the entry's
    ``tracked_run(nested=True)`` nests under it, without ending it when the worker is done."""
    active = mlflow.active_run()
    if active is not None and active.info.run_id == parent_run_id:
        yield
        return
    parent = MlflowClient().get_run(parent_run_id)
    mlflow.set_experiment(experiment_id=parent.info.experiment_id)
    mlflow.start_run(run_id=parent_run_id)
    try:
        yield
    finally:
        # Pop it from this process's run stack but leave it RUNNING: the tune process ends it.
        mlflow.end_run(status="RUNNING")
