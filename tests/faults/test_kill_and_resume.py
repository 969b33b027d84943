"""Processes killed or interrupted at chosen points, through ``mlflow run`` and ``python -m``: the run a
user sees always ends FINISHED, FAILED or KILLED, a re-run resumes it in place, curves stay continuous,
and nothing is half-written (no partial checkpoint, no second registry version)."""

from __future__ import annotations

import os
import signal

from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from projects.core.guardian import END_REASON_TAG, RESUMED_INTO_TAG, UNREPORTED
from projects.core.tracking import checkpoint_dir
from tests.faults.helpers import (
    CLASSIFY,
    CLASSIFY_STEPS_PER_EPOCH,
    assert_continuous_curves,
    finish,
    last_checkpoint,
    launch,
    launch_paused,
    run_ids,
    runs,
    wait_for,
    wait_status,
)

REGISTERED = {**CLASSIFY, "register": "true"}


def test_mlflow_run_killed_twice_resumes_into_one_finished_run_with_one_version():
    # 1. kill -9 in the middle of a step of epoch 2.
    code, err = finish(
        launch("classify", REGISTERED, via="mlflow", fault=f"kill_at_step={CLASSIFY_STEPS_PER_EPOCH + 2}")
    )
    assert code != 0
    (run_id,) = run_ids()
    run = wait_status(run_id, "KILLED")  # not FAILED (the launcher's verdict) and never RUNNING
    assert run.data.tags[END_REASON_TAG] == UNREPORTED
    assert last_checkpoint(run_id)["epoch"] == 1

    # 2. The re-run continues the same run and is killed again, right after registering the model.
    code, err = finish(launch("classify", REGISTERED, via="mlflow", fault="kill_in_registration"))
    assert code != 0 and "Traceback" not in err, err[-2000:]
    wait_status(run_id, "KILLED")
    wait_for(lambda: run_ids() == [run_id], "the resumed attempt's launcher run to be removed")
    (version,) = MlflowClient().search_model_versions(f"run_id = '{run_id}'")

    # 3. The third attempt finishes: exit 0 and no traceback, one run, one version, now champion.
    code, err = finish(launch("classify", REGISTERED, via="mlflow"))
    assert code == 0 and "Traceback" not in err, err[-2000:]
    assert "succeeded" in err
    assert wait_status(run_id, "FINISHED").data.tags["projects.resumed"] == "true"
    wait_for(lambda: run_ids() == [run_id], "a single visible run")
    versions = MlflowClient().search_model_versions(f"run_id = '{run_id}'")
    assert [v.version for v in versions] == [version.version]
    assert MlflowClient().get_model_version_by_alias("classify-resnet18", "champion").run_id == run_id
    assert_continuous_curves(run_id, epochs=3)
    hidden = runs(ViewType.DELETED_ONLY)
    assert len(hidden) == 2 and all(r.data.tags[RESUMED_INTO_TAG] == run_id for r in hidden)


def test_ctrl_c_checkpoint_write_sigterm_and_two_resumes_at_once(tmp_path):
    spe = CLASSIFY_STEPS_PER_EPOCH
    # 1. Ctrl-C (SIGINT to the whole process group, as a terminal sends it) under `mlflow run`, mid-step:
    # the step finishes, the checkpoint holds it, and the run ends KILLED although MLflow's launcher
    # marks its run FAILED after an interrupt.
    proc = launch_paused("classify", CLASSIFY, 3, tmp_path, via="mlflow")
    os.killpg(proc.pid, signal.SIGINT)
    code, err = finish(proc)
    assert code != 0
    (run_id,) = run_ids()
    run = wait_status(run_id, "KILLED")
    assert run.data.tags[END_REASON_TAG] == "stopped by SIGINT"
    state = last_checkpoint(run_id)
    assert (state["global_step"], state["epoch"], state["step_in_epoch"]) == (3, 0, 3)

    # 2. kill -9 while epoch 2's checkpoint is being written: the previous one stays whole.
    code, _ = finish(launch("classify", CLASSIFY, fault="kill_in_checkpoint_write=2"))
    assert code != 0
    wait_status(run_id, "KILLED")
    assert last_checkpoint(run_id)["epoch"] == 1
    assert list(checkpoint_dir(run_id).glob(".last.pt.*.tmp")), (
        "the kill should leave the unfinished temp file"
    )

    # 3. SIGTERM (what timeout, docker stop, SLURM and Kubernetes send) mid-epoch 3: exit 143, KILLED,
    # a checkpoint at that very step; the stale temp file is gone.
    code, err = finish(launch("classify", CLASSIFY, fault=f"sigterm_at_step={2 * spe + 2}"))
    assert code == 143, err[-2000:]
    assert "interrupted (SIGTERM)" in err
    run = wait_status(run_id, "KILLED")
    assert run.data.tags[END_REASON_TAG] == "stopped by SIGTERM"
    assert last_checkpoint(run_id)["global_step"] == 2 * spe + 2
    assert not list(checkpoint_dir(run_id).glob(".*.tmp"))

    # 4. Two processes resume the same run at once: one does, the other stops with one line.
    first, second = launch("classify", CLASSIFY), launch("classify", CLASSIFY)
    results = sorted([finish(first), finish(second)], key=lambda r: r[0])
    (ok, _), (refused, err) = results
    assert (ok, refused) == (0, 2), results
    assert err.strip().splitlines()[-1].startswith("error: run ") and "resume=false" in err
    wait_status(run_id, "FINISHED")
    assert last_checkpoint(run_id)["global_step"] == 3 * spe  # no step lost, none done twice
    assert_continuous_curves(run_id, epochs=3)
    wait_for(lambda: run_ids() == [run_id], "a single visible run")


def test_sigterm_to_the_mlflow_run_launcher_alone_stops_the_training_process(tmp_path):
    """``kill <launcher pid>`` (a container stop, a supervisor that signals only the main process) ends
    MLflow's launcher but not its command: the command must stop as on SIGTERM instead of training on
    orphaned and registering a model."""
    proc = launch_paused("classify", REGISTERED, 3, tmp_path, via="mlflow")
    os.kill(proc.pid, signal.SIGTERM)  # the launcher alone, not its process group
    _, err = finish(proc)  # returns once the command, which holds the launcher's stderr, has exited too
    assert "the mlflow run launcher" in err and "interrupted (SIGTERM)" in err, err[-2000:]
    (run_id,) = run_ids()
    run = wait_status(run_id, "KILLED")
    assert run.data.tags[END_REASON_TAG] == "stopped by SIGTERM"
    assert last_checkpoint(run_id)["global_step"] == 3
    assert not MlflowClient().search_registered_models()
