"""``tune``: run an Optuna study (``studies/<study>.yaml``) over an entry point, with per-epoch pruning.

    mlflow run . -e tune -P study=simclr -P n_trials=40 --env-manager local
    mlflow run . -e tune -P study=classify_vit -P n_trials=40 -P workers=4 --env-manager local
    optuna-dashboard studies/optuna-journal.log

This run is the parent MLflow run; each trial is the entry point's own run nested under it. Every
invocation adds exactly ``n_trials`` trials to the study (created if new, resumed otherwise), run by
``workers`` processes here plus any other tune invocation on the same storage.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mlflow
import optuna
import yaml
from optuna.trial import TrialState

from projects.core.config import check, check_positive, from_dict, param, parse_overrides, validate_choices
from projects.core.entry import main
from projects.core.errors import ProjectError
from projects.core.loop import Callback
from projects.core.metrics import PARENT_HEADLINES
from projects.core.registry import promote_if_better
from projects.core.tracking import log_table, redact, study_experiment, tracked_run
from projects.tune.mlflow_trials import MODEL_URI_ATTR, PARENT_ATTR, RUN_ID_ATTR
from projects.tune.objective import Job, fail_orphaned_trials, run_worker
from projects.tune.plots import log_study_plots
from projects.tune.spec import (
    PRUNERS,
    StudySpec,
    load_spec,
    make_pruner,
    make_sampler,
    representative_params,
    trial_values,
    validate,
)
from projects.tune.storage import DEFAULT_JOURNAL, check_reachable, open_storage, storage_url
from projects.tune.worker import worker_main

log = logging.getLogger(__name__)
ENQUEUED_BY_ATTR = "tune.enqueued_by"
REGISTERED_ATTR = "tune.registered"  # study user attr: trial number -> registered model version


@dataclass
class Config:
    """Run an Optuna study over an entry point; trials are nested MLflow runs, pruned per epoch."""

    study: str = param("simclr", "study name (studies/<study>.yaml) or a path to a study file")
    n_trials: int = param(20, "trials this invocation adds to the study (shared by its workers)")
    workers: int = param(1, "worker processes on this machine, all claiming trials from the study's queue")
    storage: str = param(
        "",
        f"Optuna storage: '' = journal file {DEFAULT_JOURNAL}; a journal path; or postgresql://user@host/db (password: PGPASSWORD or ~/.pgpass)",
    )
    study_name: str = param("", "Optuna study name; '' = the study file's name (+ @overrides when given)")
    pruner: str = param("", "pruner: '' = the study file's; or median / hyperband / none", ("", *PRUNERS))
    overrides: str = param("", "entry params fixed for every trial, e.g. dataset=synthetic,epochs=2")
    seed: int = param(0, "sampler seed; reproducible for a new study (re-runs and workers derive their own)")
    register: bool = param(True, "register the best trial's model; champion if it beats the current one")

    def __post_init__(self) -> None:
        validate_choices(self)
        check_positive(self, "n_trials", "workers")
        check(bool(self.study.strip()), "study must name a study file")


def default_study_name(spec: StudySpec, overrides: dict[str, str]) -> str:
    """Overrides change what a trial computes, so a shrunk study never mixes into the real one."""
    if not overrides:
        return spec.name
    return spec.name + "@" + ",".join(f"{k}={v}" for k, v in sorted(overrides.items()))


def pruner_settings(spec: StudySpec, choice: str) -> dict[str, Any]:
    if not choice or choice == spec.pruner.get("type"):
        return dict(spec.pruner)
    return {"type": choice}  # a different pruner than the file's: its defaults


def trial_epochs(spec: StudySpec, overrides: dict[str, str]) -> int | None:
    cfg = from_dict(spec.config_class(), trial_values(spec, overrides, representative_params(spec)))
    return getattr(cfg, "epochs", None)


def prepare(cfg: Config) -> tuple[StudySpec, dict[str, str], dict[str, Any], int | None]:
    """Every check that needs no writes: bad input fails here, before any run, file or table exists."""
    spec = load_spec(cfg.study)
    overrides = parse_overrides(cfg.overrides)
    validate(spec, overrides)
    epochs = trial_epochs(spec, overrides)
    pruner = pruner_settings(spec, cfg.pruner)
    make_pruner(pruner, epochs)
    make_sampler(spec.sampler, cfg.seed)
    check_reachable(cfg.storage)
    return spec, overrides, pruner, epochs


def start_workers(job: Job, workers: int, entry_module: str) -> None:
    """``workers`` == 1 runs in this process; more start that many worker processes and wait for them.

    Workers fork from a forkserver that imported torch/mlflow/the entry module once: N fresh interpreters
    would each pay that import (tens of seconds on a busy CPU), and a plain fork would share this
    process's open database connections. Each worker opens its own storage and MLflow connections.
    """
    if workers == 1:
        run_worker(job)
        return
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["projects.tune.worker", entry_module])
    # Split the cores between the workers instead of oversubscribing them with torch's default threads.
    threads = max(1, (os.cpu_count() or 1) // workers)
    env, cwd = dict(os.environ), os.getcwd()
    jobs = [{**job.to_dict(), "worker": i} for i in range(workers)]
    procs = [ctx.Process(target=worker_main, args=(j, threads, env, cwd)) for j in jobs]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    failed = {f"worker {i}": p.exitcode for i, p in enumerate(procs) if p.exitcode != 0}
    if failed:
        raise RuntimeError(f"tune workers failed: {failed}")


def summarize(study: optuna.Study, parent_run_id: str, metric: str) -> dict[str, float]:
    """Metrics of the trials this invocation ran, and of the study as a whole: the best trial's objective
    under the objective metric's own name (``probe_top1``), with the best trial's final figures (e.g.
    ``test_top1``) under theirs, so the tune run compares with plain runs in the runs table."""
    trials = study.get_trials(deepcopy=False)
    mine = [t for t in trials if t.user_attrs.get(PARENT_ATTR) == parent_run_id]
    summary: dict[str, float] = {
        "trials_run": len(mine),
        "trials_complete": sum(t.state == TrialState.COMPLETE for t in mine),
        "trials_pruned": sum(t.state == TrialState.PRUNED for t in mine),
        "trials_failed": sum(t.state == TrialState.FAIL for t in mine),
        # One intermediate value per trained epoch: what pruning saves is visible here.
        "epochs_trained": sum(len(t.intermediate_values) for t in mine),
        "study_trials": len(trials),
    }
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        summary.update(
            {k: float(v) for k, v in best.user_attrs.get("metrics", {}).items() if k in PARENT_HEADLINES}
        )
        summary[metric] = float(best.value)
        summary["best_trial"] = best.number
    return summary


def log_trials_table(study: optuna.Study) -> None:
    rows = [
        {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "epochs": len(t.intermediate_values),
            "mlflow_run_id": t.user_attrs.get(RUN_ID_ATTR, ""),
            **{f"params.{k}": v for k, v in t.params.items()},
        }
        for t in study.get_trials(deepcopy=False)
    ]
    if rows:
        log_table(rows, "trials.json")


def register_best(study: optuna.Study, spec: StudySpec) -> str | None:
    """Register the best trial's logged model (once per trial) and move ``champion`` if it is better."""
    if not spec.registry:
        return None
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    with_model = [t for t in complete if t.user_attrs.get(MODEL_URI_ATTR)]
    if not with_model:
        return None
    sign = 1 if spec.direction == "maximize" else -1
    best = max(with_model, key=lambda t: sign * t.value)
    # Among equal values a trial may skip logging its model (not strictly better); any of them will do.
    if best.value != study.best_value:
        log.warning("best trial %d logged no model; nothing registered", study.best_trial.number)
        return None
    registered = dict(study.user_attrs.get(REGISTERED_ATTR, {}))
    if str(best.number) in registered:
        return registered[str(best.number)]
    uri = best.user_attrs[MODEL_URI_ATTR]
    name, metric = spec.registry["name"], spec.registry["metric"]
    value = best.user_attrs.get("metrics", {}).get(metric, best.value)
    version = mlflow.register_model(
        uri, name, tags={"optuna.study_name": study.study_name, "optuna.trial_number": str(best.number)}
    ).version
    direction = spec.direction if metric == spec.metric else spec.registry.get("direction", "maximize")
    greater = direction == "maximize"
    promote_if_better(name, version, metric, float(value), greater_is_better=greater)
    registered[str(best.number)] = str(version)
    study.set_user_attr(REGISTERED_ATTR, registered)
    return str(version)


def run(cfg: Config, *, callbacks: Sequence[Callback] = (), nested: bool = False) -> dict[str, float]:
    """Add ``cfg.n_trials`` trials to the study and run them; returns the summary metrics."""
    spec, overrides, pruner, epochs = prepare(cfg)
    study_name = cfg.study_name or default_study_name(spec, overrides)
    tags = {"optuna.study_name": study_name, "optuna.storage": redact(storage_url(cfg.storage))}
    experiment = study_experiment(spec.module)
    run_name = f"tune-{study_name}"
    with tracked_run(cfg, "tune", run_name=run_name, nested=nested, tags=tags, experiment=experiment) as tr:
        mlflow.log_text(yaml.safe_dump(spec.as_dict(), sort_keys=False), "study.yaml")
        storage = open_storage(cfg.storage)
        study = optuna.create_study(
            study_name=study_name,
            storage=storage,
            direction=spec.direction,
            sampler=make_sampler(spec.sampler, cfg.seed),
            pruner=make_pruner(pruner, epochs),
            load_if_exists=True,
        )
        if not study.metric_names:  # optuna-dashboard labels the objective with it
            study.set_metric_names([spec.metric])
        if "entry_point" not in study.user_attrs:  # first invocation: record what the study is
            study.set_user_attr("entry_point", spec.entry_point)
            study.set_user_attr("objective", spec.metric)
            study.set_user_attr("base", {**spec.base, **overrides})
        orphaned = fail_orphaned_trials(study, storage)
        if orphaned:
            log.warning("trials %s of a killed worker are marked FAIL", orphaned)
        before = len(study.trials)
        for _ in range(cfg.n_trials):
            study.enqueue_trial({}, user_attrs={ENQUEUED_BY_ATTR: tr.run_id})
        # A re-run, or an invocation on another machine started at the same moment, must not replay another
        # invocation's sampler stream (a random sampler would redraw the same params): the seed derives from
        # the number of this invocation's first trial, unique in the study (0 for a new study's first run).
        first = min(
            t.number
            for t in study.get_trials(deepcopy=False)
            if t.number >= before and t.user_attrs.get(ENQUEUED_BY_ATTR) == tr.run_id
        )
        seed = cfg.seed + 1_000_003 * first
        job = Job(
            spec_path=spec.path,
            study_name=study_name,
            storage=cfg.storage,
            parent_run_id=tr.run_id,
            pruner=pruner,
            epochs=epochs,
            overrides=overrides,
            seed=seed,
            register=cfg.register,
        )
        try:
            start_workers(job, cfg.workers, spec.module)
        finally:  # trials of workers that died (their MLflow runs are closed when this run ends)
            fail_orphaned_trials(study, storage)

        study = optuna.load_study(study_name=study_name, storage=storage)
        summary = summarize(study, tr.run_id, spec.metric)
        mlflow.log_metrics(summary)
        if "best_trial" in summary:
            mlflow.log_params({f"best.{k}": v for k, v in study.best_params.items()})
            mlflow.set_tag("optuna.best_run_id", study.best_trial.user_attrs.get(RUN_ID_ATTR, ""))
        log_trials_table(study)
        log_study_plots(study)
        if cfg.register:
            version = register_best(study, spec)
            if version:
                mlflow.set_tag("registered_version", version)
        log.info("study %s: %s", study_name, json.dumps(summary))
        if "best_trial" not in summary:
            errors = [t.user_attrs["error"] for t in study.trials if "error" in t.user_attrs]
            first = f"; first error: {errors[0]}" if errors else ""
            raise ProjectError(f"study {study_name!r} has no completed trial{first}")
        return summary


if __name__ == "__main__":
    main(Config, run)
