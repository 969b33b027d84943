"""MLflow tracking: default store, one context manager per run, run metadata and resumption.

Default store: ``sqlite:///mlflow.db`` with artifacts under ``./mlruns`` (MLflow 3's embedded default);
``MLFLOW_TRACKING_URI`` (e.g. ``http://host:5000``) overrides it. Runs go to their study's experiment
(``EXPERIMENT`` of the study package: ``ssl``, ``vit-vs-cnn``, ``nerf``) unless ``MLFLOW_EXPERIMENT_NAME``
or ``MLFLOW_EXPERIMENT_ID`` picks one. Under ``mlflow run`` the launcher's run (``MLFLOW_RUN_ID``) is
used, in the experiment the launcher chose (``--experiment-name``).

Every run is named after what it is and what differs from the entry's defaults (:func:`default_run_name`)
when it is created, and carries a description (``mlflow.note.content``) with its headline figure once it
has finished.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import importlib
import importlib.metadata
import logging
import os
import platform
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import torch
from mlflow.tracking import MlflowClient
from optuna.exceptions import TrialPruned

from projects.core import distributed, run_lock
from projects.core.config import NON_IDENTITY_FIELDS, run_key, to_params
from projects.core.errors import ConfigError, ProjectError
from projects.core.guardian import (
    END_REASON_TAG,
    HEARTBEAT_TAG,
    OWNER_TAG,
    RESUMED_INTO_TAG,
    UNREPORTED,
    close_children,
    owner_token,
    start_guardian,
)
from projects.core.signals import Interrupted

log = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
NOTE_TAG = "mlflow.note.content"  # the description the MLflow UI shows and edits
# The experiment kind the MLflow UI's experiment-type selector shows ("custom model development"); the
# UI's GenAI / model-training view itself is a per-browser switch (``?workflowType=machine_learning``).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
# Fields that say how a run executes or where its data lives, not what it is: left out of run names.
UNNAMED_FIELDS = NON_IDENTITY_FIELDS | {
    "device",
    "precision",
    "compile",
    "nproc_per_node",
    "sync_bn",
    "data_dir",
    "pipeline",
    "log_every_n_steps",
}
NAME_FIELDS = ("model", "arch", "dataset")  # what every name starts with, after the entry point
MAX_NAMED_PARAMS = 6
CHECKPOINT_ROOT_ENV = "PROJECTS_CHECKPOINT_DIR"
RUN_KEY_TAG = "projects.run_key"
ENTRY_POINT_TAG = "projects.entry_point"
TRACKED_PACKAGES = (
    "torch",
    "torchvision",
    "mlflow",
    "optuna",
    "timm",
    "albumentations",
    "numpy",
    "nerfstudio",
)
RESUMABLE_STATUSES = ("RUNNING", "FAILED", "KILLED")
# A RUNNING run on another machine whose heartbeat is older than this is taken as dead (resumable).
LEASE_S = float(os.environ.get("PROJECTS_LEASE_S", "300"))


def configure_tracking() -> str:
    """Point MLflow at ``MLFLOW_TRACKING_URI`` or the embedded SQLite default; return the URI."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    mlflow.set_tracking_uri(uri)
    return uri


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()}:{torch.get_num_threads()}threads"


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def package_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def fingerprint_arrays(*arrays: np.ndarray) -> str:
    """sha256 over shapes, dtypes and bytes: identifies exactly the data a run saw."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()[:16]


def log_dataset(images: np.ndarray, labels: np.ndarray, name: str, source: str, context: str) -> str:
    """Log a dataset as an MLflow input (``mlflow.log_input``) whose digest is our fingerprint."""
    from mlflow.data.numpy_dataset import NumpyDataset
    from mlflow.data.sources import LocalArtifactDatasetSource

    digest = fingerprint_arrays(images, labels)
    dataset = NumpyDataset(
        features=images[:1],
        targets=labels[:1],
        source=LocalArtifactDatasetSource(source),
        name=name,
        digest=digest,
    )
    mlflow.log_input(dataset, context=context)
    mlflow.set_tag(f"data.{context}.fingerprint", digest)
    mlflow.set_tag(f"data.{context}.size", str(len(labels)))
    return digest


_NESTED_RUN_NAME: contextvars.ContextVar[str | None] = contextvars.ContextVar("nested_run_name", default=None)


@contextmanager
def nested_run_name(name: str) -> Iterator[None]:
    """Name the nested runs started in this block ``name`` (a tune trial's ``trial-<n> <params>``) when
    they are created, instead of the entry point's own name."""
    token = _NESTED_RUN_NAME.set(name)
    try:
        yield
    finally:
        _NESTED_RUN_NAME.reset(token)


def main_module_name() -> str | None:
    """The importable name of the module this process runs as ``__main__`` (``python -m <entry>``, and so
    ``mlflow run`` and ``torchrun -m``), or None for a script or an interpreter."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    return spec.name if spec else None


def _module_name(obj: Any) -> str:
    """The importable name of ``obj``'s module."""
    name = type(obj).__module__
    return (main_module_name() or name) if name == "__main__" else name


def study_experiment(module: str) -> tuple[str, str] | None:
    """``(EXPERIMENT, EXPERIMENT_DESCRIPTION)`` of the study package that ``module`` belongs to, if any."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        try:
            package = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        if hasattr(package, "EXPERIMENT"):
            return package.EXPERIMENT, getattr(package, "EXPERIMENT_DESCRIPTION", "")
    return None


def _format_value(value: Any) -> str:
    """A parameter's value in a run name: short, password-free, a path by its last parts."""
    if isinstance(value, float):
        return f"{value:g}"
    text = _param_text(value)
    if "/" in text and not text.startswith("models:/"):
        # a path: its last two parts say which (``<run id>/last.pt``), each cut short
        text = "/".join(p if len(p) <= 12 else p[:11] + "~" for p in text.rstrip("/").split("/")[-2:])
    return text if len(text) <= 32 else text[:31] + "~"


def _declared_depth(cls: type, name: str) -> int:
    """How far up ``cls``'s MRO field ``name`` is declared: the entry's own fields (a method's
    ``temperature``) come before those of shared bases (``epochs``)."""
    return next(i for i, klass in enumerate(cls.__mro__) if name in getattr(klass, "__annotations__", {}))


def default_run_name(config: Any, entry_point: str) -> str:
    """``<entry>-<model or arch>-<dataset>`` followed by ``key=value`` for every parameter that differs
    from the entry's default (execution-only fields aside; the entry's own fields first, at most
    ``MAX_NAMED_PARAMS``): two runs that differ get different names."""
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    base = [entry_point, *(_format_value(values[k]) for k in NAME_FIELDS if k in values)]
    changed = []
    for f in sorted(dataclasses.fields(config), key=lambda f: _declared_depth(type(config), f.name)):
        if f.name in UNNAMED_FIELDS or f.name in NAME_FIELDS:
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        if values[f.name] != default:
            changed.append(f"{f.name}={_format_value(values[f.name])}")
    if len(changed) > MAX_NAMED_PARAMS:
        changed = [*changed[:MAX_NAMED_PARAMS], "..."]
    return " ".join(["-".join(base), *changed])


def entry_description(entry_point: str) -> str:
    """The first paragraph of the entry point's module docstring: what the run is and its protocol."""
    from projects.entrypoints import ENTRY_POINTS

    name = ENTRY_POINTS.get(entry_point, "")
    module = sys.modules["__main__"] if main_module_name() == name else sys.modules.get(name)
    doc = (module.__doc__ or "") if module else ""
    return " ".join(doc.split("\n\n")[0].replace("``", "`").split())


def _experiment_id(name: str, description: str) -> str:
    """The id of experiment ``name``, created if needed."""
    client = MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(
            name, tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING, NOTE_TAG: description}
        )
    except Exception:  # created meanwhile by another process
        return client.get_experiment_by_name(name).experiment_id


def label_experiment(experiment_id: str, description: str = "") -> None:
    """Mark the experiment as model training for the MLflow UI (``mlflow.experimentKind``; otherwise the UI
    infers a kind, GenAI included) and describe it, if it has no description yet."""
    client = MlflowClient()
    tags = client.get_experiment(experiment_id).tags
    if EXPERIMENT_KIND_TAG not in tags:
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
    if description and not tags.get(NOTE_TAG):
        client.set_experiment_tag(experiment_id, NOTE_TAG, description)


def _headline(metrics: dict[str, float]) -> str:
    """The run's result in one line, from the vocabulary's headline metrics it logged."""
    from projects.core.metrics import PARENT_HEADLINES

    keys = [k for k in (*PARENT_HEADLINES, "test_psnr", "test_ssim", "test_lpips") if k in metrics]
    return ", ".join(f"{k} = {metrics[k]:.4g}" for k in keys)


def checkpoint_dir(run_id: str) -> Path:
    return Path(os.environ.get(CHECKPOINT_ROOT_ENV, "checkpoints")) / run_id


@dataclass
class TrackedRun:
    run_id: str
    resumed: bool
    main: bool = True  # False on the ranks > 0 of a torchrun job: rank 0 alone logs to the run

    @property
    def checkpoint_dir(self) -> Path:
        return checkpoint_dir(self.run_id)


def _runs_with_key(client: MlflowClient, key: str, parent_run_id: str | None) -> list[Any]:
    experiment_ids = [e.experiment_id for e in client.search_experiments()]
    query = f"tags.`{RUN_KEY_TAG}` = '{key}'"
    if parent_run_id:
        query += f" AND tags.`mlflow.parentRunId` = '{parent_run_id}'"
    return client.search_runs(experiment_ids, query, order_by=["attributes.start_time DESC"], max_results=20)


def find_resumable_run(key: str, parent_run_id: str | None, checkpointed: bool = True) -> str | None:
    """The newest unfinished run with this run key (and parent) that left a checkpoint.

    ``checkpointed=False`` (a parent run whose state is its children) needs no checkpoint. A top-level
    run that is RUNNING in a live process (:func:`is_live`) is not resumable: one clear error instead.
    """
    client = MlflowClient()
    for run in _runs_with_key(client, key, parent_run_id):
        if run.info.status not in RESUMABLE_STATUSES or run.info.run_id == os.environ.get("MLFLOW_RUN_ID"):
            continue
        if run.info.status == "RUNNING" and parent_run_id is None and is_live(run):
            owner = run.data.tags.get(OWNER_TAG, "another process")
            raise ConfigError(
                f"run {run.info.run_id} with these parameters is running ({owner}); wait for it to end, "
                "or pass resume=false to start a separate run"
            )
        if not checkpointed or (checkpoint_dir(run.info.run_id) / "last.pt").exists():
            return run.info.run_id
        if _remote_checkpoint(client, run.info.run_id):
            return run.info.run_id
    return None


def is_live(run: Any) -> bool:
    """Whether a RUNNING run's process is alive: on this machine its lock says so exactly; on another,
    a heartbeat (from its guardian) younger than ``LEASE_S`` does."""
    host = run.data.tags.get(OWNER_TAG, "").rpartition(":")[0]
    if host == socket.gethostname():
        return run_lock.is_held(run.info.run_id)
    beat = float(run.data.tags.get(HEARTBEAT_TAG) or run.info.start_time / 1000)
    return time.time() - beat < LEASE_S


def finished_child(config: Any, entry_point: str) -> dict[str, Any] | None:
    """Metrics (and ``run_id``) of the active run's FINISHED child for ``config``, or None.

    A resumed parent calls this before each child, so children that completed are not trained again.
    """
    parent = mlflow.active_run()
    if parent is None:
        return None
    for run in _runs_with_key(MlflowClient(), run_key(config, entry_point), parent.info.run_id):
        if run.info.status == "FINISHED":
            return {**run.data.metrics, "run_id": run.info.run_id}
    return None


def _remote_checkpoint(client: MlflowClient, run_id: str) -> bool:
    try:
        return any(f.path.endswith("last.pt") for f in client.list_artifacts(run_id, "checkpoints"))
    except Exception:  # an unreachable artifact store means: nothing to resume from
        return False


def _experiment_from_env() -> bool:
    return bool(os.environ.get("MLFLOW_EXPERIMENT_NAME") or os.environ.get("MLFLOW_EXPERIMENT_ID"))


def _hand_over_launcher_run(launcher_id: str, resumed_id: str) -> None:
    """``mlflow run`` made a run for this attempt; we continue ``resumed_id`` instead. The launcher still
    owns its run (it sets its status when we exit), so it is only marked here; the guardian deletes it
    once the launcher has exited."""
    client = MlflowClient()
    client.set_tag(launcher_id, RESUMED_INTO_TAG, resumed_id)
    client.set_tag(launcher_id, "mlflow.note.content", f"This attempt continued run {resumed_id}.")
    os.environ.pop("MLFLOW_RUN_ID", None)


def redact(text: str) -> str:
    """Hide a URL's password (``scheme://user:pw@host``) before it goes into a message or an MLflow param."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", text)


def _param_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else redact(str(value))


def _close_orphaned_children(run_id: str) -> None:
    """A top-level run has ended: a child run still RUNNING lost its process (a tune worker killed
    while its parent went on) and is closed KILLED."""
    with contextlib.suppress(Exception):  # an unreachable store: the guardian has the last word
        close_children(MlflowClient(), run_id, "KILLED", UNREPORTED)


def _ending(exc: BaseException) -> tuple[str, str]:
    """The run status and ``projects.end_reason`` for an exception that ends a run."""
    if isinstance(exc, Interrupted):
        return "KILLED", f"stopped by {exc.signal_name}"
    if isinstance(exc, KeyboardInterrupt):
        return "KILLED", "stopped by SIGINT"
    if isinstance(exc, TrialPruned):
        return "KILLED", f"pruned: {exc}"
    if isinstance(exc, ProjectError):
        return "FAILED", f"error: {exc}"
    return "FAILED", f"{type(exc).__name__}: {exc}"


@contextmanager
def tracked_run(
    config: Any,
    entry_point: str,
    *,
    run_name: str | None = None,
    nested: bool = False,
    tags: dict[str, str] | None = None,
    device: torch.device | str = "cpu",
    checkpointed: bool = True,
    experiment: tuple[str, str] | None = None,
) -> Iterator[TrackedRun]:
    """Start (or resume) an MLflow run for ``config``; end it FINISHED, FAILED or KILLED.

    A re-run of a config whose earlier run was interrupted continues that run (same run id, same
    checkpoint directory) unless ``config.resume`` is false. Parent runs pass ``checkpointed=False``: they
    resume without a checkpoint and skip their finished children (:func:`finished_child`).

    A top-level run is held by this process (:class:`~projects.core.run_lock.RunLock`, tag
    ``projects.owner``) and, in an entry-point process, watched by a guardian process
    (:mod:`projects.core.guardian`) that ends it correctly when this process cannot (kill -9) or when
    MLflow's launcher overwrites its status.

    A new top-level run goes to ``experiment`` (name, description), by default its study's
    (:func:`study_experiment`), unless the environment or ``mlflow run`` chose one; a nested run to its
    parent's. ``run_name`` defaults to :func:`default_run_name`.

    Under ``torchrun`` rank 0 does all of this; the other ranks only learn the run's id and whether it
    resumed (``TrackedRun.main`` is False there: they log nothing).
    """
    if not distributed.is_main():
        run_id, resumed = distributed.broadcast(None)
        yield TrackedRun(run_id=run_id, resumed=resumed, main=False)
        return
    configure_tracking()
    key = run_key(config, entry_point)
    parent = mlflow.active_run().info.run_id if nested and mlflow.active_run() else None
    resume_id = find_resumable_run(key, parent, checkpointed) if getattr(config, "resume", True) else None
    lock = run_lock.RunLock(resume_id) if resume_id and not nested else None
    launcher = None if nested else os.environ.get("MLFLOW_RUN_ID")
    if nested and _NESTED_RUN_NAME.get():
        run_name = _NESTED_RUN_NAME.get()
    run_name = run_name or default_run_name(config, entry_point)
    experiment = experiment or study_experiment(_module_name(config))
    experiment_id = None
    if parent:
        experiment_id = mlflow.active_run().info.experiment_id
    elif not (resume_id or launcher or _experiment_from_env()) and experiment:
        experiment_id = _experiment_id(*experiment)
    if resume_id and launcher:
        _hand_over_launcher_run(launcher, resume_id)
    try:
        active = mlflow.start_run(
            run_id=resume_id,
            experiment_id=experiment_id,
            run_name=None if resume_id else run_name,
            nested=nested,
        )
    except BaseException:
        if lock:
            lock.release()
        raise
    run_id = active.info.run_id
    description = entry_description(entry_point)
    guardian = None
    try:
        if not nested:
            lock = lock or run_lock.RunLock(run_id)
            mlflow.set_tag(OWNER_TAG, owner_token())
            guardian = start_guardian(run_id, launcher if resume_id else None)
        if resume_id:
            mlflow.set_tag("projects.resumed", "true")
        else:
            # `mlflow run` already logged the -P values as typed by the user ("1e-3"); add the rest.
            logged = MlflowClient().get_run(run_id).data.params
            mlflow.log_params({k: _param_text(v) for k, v in to_params(config).items() if k not in logged})
            system_tags = {
                RUN_KEY_TAG: key,
                ENTRY_POINT_TAG: entry_point,
                "device": device_name(device),
                "seed": str(getattr(config, "seed", "")),
                **{f"versions.{k}": v for k, v in package_versions().items()},
                **(tags or {}),
            }
            commit = git_commit()
            if commit:
                system_tags.setdefault("mlflow.source.git.commit", commit)
            system_tags.setdefault(NOTE_TAG, description)
            mlflow.set_tags(system_tags)
            if not nested:
                label_experiment(active.info.experiment_id, experiment[1] if experiment else "")
        distributed.broadcast((run_id, resume_id is not None))
        yield TrackedRun(run_id=run_id, resumed=resume_id is not None)
    except BaseException as exc:
        status, reason = _ending(exc)
        with contextlib.suppress(Exception):  # the store may be what failed; the guardian retries
            mlflow.set_tag(END_REASON_TAG, reason[:5000])
        with contextlib.suppress(Exception):
            mlflow.end_run(status)
        if guardian:
            guardian.report(status, reason)
        raise
    else:
        with contextlib.suppress(Exception):  # a description is not worth failing a finished run for
            result = _headline(MlflowClient().get_run(run_id).data.metrics)
            if result:
                mlflow.set_tag(NOTE_TAG, f"{description}\n\nResult: {result}.")
        mlflow.end_run("FINISHED")
        if guardian:
            guardian.report("FINISHED")
    finally:
        if not nested:
            _close_orphaned_children(run_id)
        if lock:
            lock.release()


def log_table(rows: list[dict[str, Any]], artifact_file: str) -> None:
    """Log rows as a table artifact (MLflow's JSON table format, shown in the UI)."""
    import pandas as pd

    mlflow.log_table(pd.DataFrame(rows), artifact_file)
