"""One worker: claim queued trials of the study until none is left and run each as the entry point's run.

The tune run enqueues exactly ``n_trials`` WAITING trials; workers (in any process, on any machine) only
ever *claim* one (WAITING -> RUNNING is atomic in both journal and RDB storages) and never create trials,
so the study ends with exactly the enqueued number: none lost, none doubled, and fast workers take more
trials than slow ones (pruned trials are short).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import socket
import traceback
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from projects.core.callbacks import OptunaPruning
from projects.core.config import from_dict
from projects.core.tracking import nested_run_name
from projects.tune.mlflow_trials import (
    PARENT_ATTR,
    TrialTracker,
    attach_parent,
    finish_child_run,
    standin_child_run,
    trial_run_name,
)
from projects.tune.spec import (
    StudySpec,
    import_entry,
    load_spec,
    make_pruner,
    make_sampler,
    suggest,
    trial_values,
)
from projects.tune.storage import open_storage

log = logging.getLogger(__name__)


@dataclass
class Job:
    """What a worker needs; JSON-serialisable so subprocess workers get it on their command line."""

    spec_path: str
    study_name: str
    storage: str
    parent_run_id: str
    pruner: dict[str, Any]
    epochs: int | None
    overrides: dict[str, str] = field(default_factory=dict)
    seed: int | None = None
    register: bool = True  # log a trial's model when it may be the best, for registration afterwards
    worker: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load(job: Job, storage: BaseStorage, sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    pruner = make_pruner(job.pruner, job.epochs)
    return optuna.load_study(study_name=job.study_name, storage=storage, sampler=sampler, pruner=pruner)


def claim_trial(study: optuna.Study, storage: BaseStorage) -> optuna.Trial | None:
    """Atomically move one WAITING trial to RUNNING for this process, or None when the queue is empty."""
    study_id = storage.get_study_id_from_name(study.study_name)
    for waiting in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, waiting.number)
        try:
            if storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                return optuna.Trial(study, trial_id)
        except UpdateFinishedTrialError:
            continue
    return None


WORKER_ATTR = "tune.worker"  # host:pid of the process that claimed the trial
DEAD_WORKER = "its worker process died (kill -9, out of memory, or a crash)"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_orphaned_trials(study: optuna.Study, storage: BaseStorage) -> list[int]:
    """Mark FAIL the RUNNING trials whose worker process on this machine is gone; return their numbers.

    A killed worker cannot tell the storage; without this its trial would stay RUNNING for ever. Trials
    claimed on other machines are judged there (a re-run of ``tune`` on that machine).
    """
    study_id = storage.get_study_id_from_name(study.study_name)
    host = socket.gethostname()
    failed = []
    for trial in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get(WORKER_ATTR, "")).rpartition(":")
        if worker_host == host and pid.isdigit() and not _alive(int(pid)):
            storage.set_trial_user_attr(trial._trial_id, "error", DEAD_WORKER)
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            failed.append(trial.number)
    return failed


def run_trial(study: optuna.Study, trial: optuna.Trial, spec: StudySpec, job: Job) -> TrialState:
    """Run the entry point for one trial, tell Optuna the outcome, and align the child run with it."""
    module = import_entry(spec.module)
    trial.set_user_attr(PARENT_ATTR, job.parent_run_id)
    trial.set_user_attr(WORKER_ATTR, f"{socket.gethostname()}:{os.getpid()}")
    tracker = TrialTracker(trial, spec.metric, spec.registry if job.register else None)
    params: dict[str, Any] = {}
    value: float | None = None
    error = ""
    try:
        params = suggest(trial, spec)
        cfg = from_dict(module.Config, trial_values(spec, job.overrides, params))
        with nested_run_name(trial_run_name(trial.number, params)):
            result = module.run(cfg, callbacks=[tracker, OptunaPruning(trial, spec.metric)], nested=True)
        # The objective is the last epoch's value: the value the pruner saw, of the model that was kept.
        value = tracker.last_value if tracker.last_value is not None else result.get(spec.metric)
        if value is None or not math.isfinite(float(value)):
            raise ValueError(f"objective {spec.metric} is {value}; the entry's run logged {sorted(result)}")
        trial.set_user_attr("metrics", {k: float(v) for k, v in result.items() if _finite(v)})
        state = TrialState.COMPLETE
    except optuna.TrialPruned:
        state = TrialState.PRUNED
    except Exception as exc:  # one bad trial (OOM, divergence, bad sampled config) must not end the study
        state, error = TrialState.FAIL, f"{type(exc).__name__}: {exc}"
        log.warning("trial %d failed: %s\n%s", trial.number, error, traceback.format_exc())
    except KeyboardInterrupt:
        _tell(study, trial, TrialState.FAIL, None, tracker, spec, job, params, "interrupted")
        raise
    return _tell(study, trial, state, value, tracker, spec, job, params, error)


def _tell(
    study: optuna.Study,
    trial: optuna.Trial,
    state: TrialState,
    value: float | None,
    tracker: TrialTracker,
    spec: StudySpec,
    job: Job,
    params: dict[str, Any],
    error: str,
) -> TrialState:
    if error:
        trial.set_user_attr("error", error[:1000])
    # Before tell: a finished trial's attributes can no longer be set.
    run_id = tracker.run_id or standin_child_run(job.parent_run_id, study.study_name, trial, params, error)
    frozen = study.tell(trial, float(value) if state == TrialState.COMPLETE else None, state=state)
    finish_child_run(run_id, study.study_name, frozen)
    log.info("trial %d %s (value=%s)", frozen.number, frozen.state.name, frozen.value)
    return frozen.state


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def run_worker(job: Job) -> int:
    """Run queued trials until the queue is empty; return how many this worker ran."""
    spec = load_spec(job.spec_path)
    storage = open_storage(job.storage)
    # Distinct seeds per worker: identical sampler streams would propose identical params in parallel.
    sampler = make_sampler(spec.sampler, None if job.seed is None else job.seed + 7919 * job.worker)
    count = 0
    with attach_parent(job.parent_run_id):
        while True:
            study = load(job, storage, sampler)  # fresh view of the storage for the sampler, per trial
            trial = claim_trial(study, storage)
            if trial is None:
                return count
            log.info("worker %d (pid %d) runs trial %d", job.worker, os.getpid(), trial.number)
            run_trial(study, trial, spec, job)
            count += 1
