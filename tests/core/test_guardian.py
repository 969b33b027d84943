"""The guardian ends a run correctly when its process cannot: kill -9, and MLflow's launcher overwriting
the status; it leaves alone a run that another process has resumed meanwhile."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import textwrap

import mlflow
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from projects.core.guardian import END_REASON_TAG, OWNER_TAG, UNREPORTED, finalize
from tests.conftest import PYTHON
from tests.faults.helpers import wait_for, wait_status


def make_run(owner: str, status: str = "RUNNING") -> str:
    client = MlflowClient()
    run = client.create_run("0", tags={OWNER_TAG: owner})
    if status != "RUNNING":
        client.set_terminated(run.info.run_id, status)
    return run.info.run_id


def test_the_reported_status_wins_over_the_launchers():
    run_id = make_run("host:1", status="FAILED")  # what `mlflow run` writes after an interrupted command
    finalize(run_id, "host:1", "KILLED", "stopped by SIGINT", None)
    run = MlflowClient().get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags[END_REASON_TAG] == "stopped by SIGINT"


def test_an_unreported_death_is_killed_with_its_children_and_the_launcher_run_goes():
    client = MlflowClient()
    run_id = make_run("host:1")
    child = client.create_run("0", tags={"mlflow.parentRunId": run_id}).info.run_id
    launcher = make_run("", status="FAILED")
    finalize(run_id, "host:1", None, "", launcher)
    for rid in (run_id, child):
        run = client.get_run(rid)
        assert run.info.status == "KILLED" and run.data.tags[END_REASON_TAG] in (
            UNREPORTED,
            "parent run ended KILLED",
        )
    assert client.get_run(launcher).info.lifecycle_stage == "deleted"


def test_a_run_resumed_by_another_process_is_left_alone():
    run_id = make_run("host:2")  # now owned by a new process
    finalize(run_id, "host:1", None, "", None)
    assert MlflowClient().get_run(run_id).info.status == "RUNNING"


def test_kill_9_of_a_real_process_ends_its_runs_killed(tmp_path):
    script = textwrap.dedent(
        """
        import time, mlflow
        from projects.core import guardian
        entry = guardian.enabled()
        entry.__enter__()  # as in an entry point's process
        run = mlflow.start_run()
        mlflow.set_tag(guardian.OWNER_TAG, guardian.owner_token())
        guardian.start_guardian(run.info.run_id)
        mlflow.start_run(nested=True)
        print("ready", flush=True)
        time.sleep(600)
        """
    )
    proc = subprocess.Popen([PYTHON, "-c", script], stdout=subprocess.PIPE, text=True, env=os.environ)
    assert proc.stdout.readline().strip() == "ready"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    wait_for(
        lambda: len(mlflow.search_runs(search_all_experiments=True, output_format="list")) == 2, "two runs"
    )
    for run in mlflow.search_runs(
        search_all_experiments=True, run_view_type=ViewType.ALL, output_format="list"
    ):
        assert wait_status(run.info.run_id, "KILLED").data.tags[END_REASON_TAG]


def test_a_parent_run_that_ends_closes_the_children_its_workers_left_running():
    from projects.core.config import param
    from projects.core.tracking import tracked_run

    @dataclasses.dataclass
    class Config:
        seed: int = param(0, "seed")

    with tracked_run(Config(), "toy", checkpointed=False) as parent:
        # a worker process's trial run, left RUNNING when that worker was killed
        orphan = MlflowClient().create_run("0", tags={"mlflow.parentRunId": parent.run_id}).info.run_id
    run = MlflowClient().get_run(orphan)
    assert run.info.status == "KILLED" and run.data.tags[END_REASON_TAG] == UNREPORTED
