"""Start entry points as a user would (``python -m`` or ``mlflow run``), with a fault injected
(``inject/sitecustomize.py``), and read back what MLflow holds."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import mlflow
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from projects.core.checkpoint import load_checkpoint
from projects.core.tracking import checkpoint_dir
from tests.conftest import PYTHON, REPO

INJECT = Path(__file__).parent / "inject"
BIN = Path(PYTHON).parent
MODULES = {
    "simclr": "projects.ssl.methods.simclr",
    "classify": "projects.classify.train",
    "tune": "projects.tune.run",
}

CLASSIFY = {  # 98 training images of 8x8 px: 7 steps per epoch
    "dataset": "synthetic",
    "epochs": "3",
    "label_fraction": "0.02",
    "val_fraction": "0.02",
    "image_size": "8",
    "batch_size": "16",
    "num_workers": "0",
    "cutmix_prob": "0",
    "register": "false",
}
CLASSIFY_STEPS_PER_EPOCH = 7


def launch(
    entry: str,
    params: dict[str, str],
    *,
    via: str = "python",
    fault: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """The entry point in its own process group (as a terminal would start it), ``fault`` injected."""
    if via == "mlflow":
        cmd = [str(BIN / "mlflow"), "run", str(REPO), "-e", entry, "--env-manager", "local"]
        for key, value in params.items():
            cmd += ["-P", f"{key}={value}"]
    else:
        cmd = [PYTHON, "-m", MODULES[entry]]
        for key, value in params.items():
            cmd += [f"--{key}", value]
    full_env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": f"{INJECT}{os.pathsep}{REPO}",
        **(env or {}),
    }
    full_env.pop("PROJECTS_FAULT", None)
    if fault:
        full_env["PROJECTS_FAULT"] = fault
    return subprocess.Popen(
        cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def launch_paused(
    entry: str, params: dict[str, str], step: int, folder: Path, via: str = "python"
) -> subprocess.Popen:
    """The entry point, once it has paused for 5 s inside optimiser step ``step`` (the test acts then)."""
    marker = folder / f"paused-at-{step}"
    proc = launch(
        entry, params, via=via, fault=f"pause_at_step={step}", env={"PROJECTS_FAULT_MARKER": str(marker)}
    )
    wait_for(marker.exists, f"step {step} to start", timeout=240)  # start-up: imports, torchrun, the data
    return proc


def finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    """Exit code and stderr."""
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 90) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def runs(view: int = ViewType.ACTIVE_ONLY, filter_string: str = "") -> list:
    return mlflow.search_runs(
        search_all_experiments=True, run_view_type=view, filter_string=filter_string, output_format="list"
    )


def run_ids(view: int = ViewType.ACTIVE_ONLY) -> list[str]:
    return sorted(r.info.run_id for r in runs(view))


def wait_status(run_id: str, status: str, timeout: float = 90):
    """The run once it has ``status`` (a guardian may set it a moment after the process ended)."""

    def reached():
        run = MlflowClient().get_run(run_id)
        return run if run.info.status == status else None

    return wait_for(reached, f"run {run_id} to be {status}", timeout)


def steps(run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in MlflowClient().get_metric_history(run_id, key))


def assert_continuous_curves(run_id: str, epochs: int) -> None:
    """One point per epoch for the epoch curves, one per logged step (no replayed duplicates)."""
    assert steps(run_id, "train_loss") == list(range(1, epochs + 1))
    step_loss = steps(run_id, "train_loss_step")
    assert step_loss == sorted(set(step_loss)), f"duplicate steps in train_loss_step: {step_loss}"


def last_checkpoint(run_id: str) -> dict:
    return load_checkpoint(checkpoint_dir(run_id) / "last.pt")


@contextmanager
def tmpfs(path: Path, size: str, readonly: bool = False):
    """A size-limited (or read-only) folder: a real full disk / unwritable store, also for root."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if readonly else "")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    assert result.returncode == 0, f"the fault suite mounts a tmpfs (needs root): {result.stderr.decode()}"
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)
