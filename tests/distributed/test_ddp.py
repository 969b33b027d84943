"""Data-parallel training on CPU with gloo: two processes compute what one process computes on the
concatenated batch (losses, gradients, weights), and a 2-process job through ``mlflow run`` is one run."""

from __future__ import annotations

import os
import signal

import pytest
import torch
import torch.multiprocessing as mp
from mlflow.tracking import MlflowClient

from projects.core.server import free_port
from projects.core.tracking import checkpoint_dir
from tests.distributed import workers
from tests.faults.helpers import (
    CLASSIFY,
    assert_continuous_curves,
    finish,
    launch,
    launch_paused,
    runs,
    wait_status,
)


def test_two_gloo_processes_compute_what_one_process_computes_on_the_whole_batch(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    workers.one_and_many(0, 1, 8, 0, str(one))
    mp.spawn(workers.one_and_many, args=(2, 4, free_port(), str(two)), nprocs=2)

    # The losses: each rank contrasts its views with every rank's (NT-Xent) / every rank's keys (MoCo v3).
    full = torch.load(one / "losses-rank0.pt")
    ranks = [torch.load(two / f"losses-rank{r}.pt") for r in range(2)]
    for loss in ("ntxent", "moco"):
        assert sum(r[loss] for r in ranks) / 2 == pytest.approx(full[loss], abs=1e-6)
    # Each rank's gradient sums what every rank's loss sends it: world size x the gradient of their mean.
    for grad in ("grad_a", "grad_b", "grad_q"):
        torch.testing.assert_close(torch.cat([r[grad] for r in ranks]) / 2, full[grad], atol=1e-6, rtol=1e-4)

    # Training: batch 4 on each of 2 ranks (sharded epochs, DDP, gathered negatives) = batch 8 on one.
    a, b = torch.load(one / "fit.pt"), torch.load(two / "fit.pt")
    assert a["steps"] == b["steps"] == 6  # 24 images, global batch 8, 2 epochs
    assert b["step_losses"] == pytest.approx(a["step_losses"], abs=1e-5)
    assert b["train_loss"] == pytest.approx(a["train_loss"], abs=1e-5)
    for name, grad in a["first_grads"].items():
        torch.testing.assert_close(b["first_grads"][name], grad, atol=1e-6, rtol=1e-4)
    for name, weight in a["weights"].items():
        torch.testing.assert_close(b["weights"][name], weight, atol=1e-5, rtol=1e-4)


DDP_CLASSIFY = {**CLASSIFY, "register": "true", "nproc_per_node": "2"}
STEPS_PER_EPOCH = 4  # 98 images: 49 per rank, batches of 16


def test_classify_on_two_processes_through_mlflow_run_is_killed_and_resumes_into_one_run(tmp_path):
    proc = launch_paused("classify", DDP_CLASSIFY, STEPS_PER_EPOCH + 2, tmp_path, via="mlflow")
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: torchrun passes it to both training processes
    code, err = finish(proc)
    assert code != 0, err[-2000:]
    (run,) = runs()
    wait_status(run.info.run_id, "KILLED")
    state = torch.load(checkpoint_dir(run.info.run_id) / "last.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["ranks"]) == 2
    assert (state["epoch"], state["step_in_epoch"]) == (1, 2)  # both ranks stopped after the same step

    code, err = finish(launch("classify", DDP_CLASSIFY))  # python -m ... --nproc_per_node 2
    assert code == 0, err[-3000:]
    (resumed,) = runs()
    assert resumed.info.run_id == run.info.run_id
    resumed = wait_status(run.info.run_id, "FINISHED")
    assert resumed.data.tags["distributed.world_size"] == "2" and resumed.data.params["nproc_per_node"] == "2"
    # Described by the entry's protocol (its module docstring, also when it runs as ``python -m``).
    assert resumed.data.tags["mlflow.note.content"].startswith("`classify`: train one model by name")
    assert_continuous_curves(run.info.run_id, epochs=3)
    client = MlflowClient()
    (version,) = client.search_model_versions("name = 'classify-resnet18'")
    assert client.get_model_version_by_alias("classify-resnet18", "champion").version == version.version
    assert version.run_id == run.info.run_id


def test_simclr_on_two_processes_through_mlflow_run(tmp_path):
    params = {
        "dataset": "synthetic",
        "fraction": "0.04",
        "epochs": "2",
        "batch_size": "16",
        "monitor_bank": "200",
        "warmup_fraction": "0",
        "num_workers": "0",
        "val_fraction": "0.05",
        "nproc_per_node": "2",
    }
    code, err = finish(launch("simclr", params, via="mlflow"))
    assert code == 0, err[-3000:]
    (run,) = runs()
    assert run.info.status == "FINISHED" and run.data.tags["distributed.backend"] == "gloo"
    # The launcher's run got the entry's name when the command started, not MLflow's random one.
    assert (
        run.info.run_name.startswith("simclr-resnet18-synthetic epochs=2 ")
        and "fraction=0.04" in run.info.run_name
    )
    client = MlflowClient()
    # 190 images, 2 x 16 per step: 5 steps per epoch; one curve, rank 0's
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss_step")] == [5, 10]
    assert len(client.get_metric_history(run.info.run_id, "probe_top1")) == 2
    assert run.data.metrics["train_images_per_sec"] > 0
    (version,) = client.search_model_versions("name = 'simclr-resnet18'")
    assert version.run_id == run.info.run_id


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--nproc_per_node", str((os.cpu_count() or 1) + 1), "--device", "cpu"], "but this machine has"),
        (["--sync_bn", "true", "--device", "cpu"], "sync_bn=true needs CUDA"),
        (["--nproc_per_node", "2", "--device", "cpu"], "starts processes of its own"),
    ],
)
def test_bad_distributed_input_is_one_line(run_main, argv, message):
    code, line = run_main("projects.classify.train", ["--dataset", "synthetic", *argv])
    assert code == 2 and line.startswith("error:") and message in line, line
    assert not runs()
