"""Bad input and a bad environment: one ``error:`` line and the documented exit code, found before any
training step; nothing left RUNNING, no checkpoint, no registered model. In-process through the entry
points' ``main`` (each case in about a second), and once through ``mlflow run``."""

from __future__ import annotations

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient

from projects.classify import train as classify
from projects.core.guardian import END_REASON_TAG
from projects.ssl.methods import simclr
from projects.tune import run as tune
from tests.faults.helpers import CLASSIFY, finish, launch, runs, tmpfs
from tests.ssl.test_entry_points import TINY_SIMCLR, argv


def assert_nothing_left(tmp_path) -> None:
    assert not runs(filter_string="attributes.status = 'RUNNING'")
    assert not list((tmp_path / "checkpoints").rglob("*.pt"))
    assert not MlflowClient().search_registered_models()


CASES = {
    "batch larger than the CutMix subset": (
        classify,
        {**CLASSIFY, "batch_size": "512", "cutmix_prob": "1.0", "register": "true"},
        "exceeds the",
    ),
    "batch larger than the SimCLR subset": (simclr, {**TINY_SIMCLR, "batch_size": "4096"}, "exceeds the"),
    "unknown monitor": (simclr, {**TINY_SIMCLR, "eval_metric": "acc"}, "eval_metric='acc' is not allowed"),
    "negative seed": (classify, {**CLASSIFY, "seed": "-1"}, "seed must be in [0, 2**32), got -1"),
    "negative sampler seed of a tune": (
        tune,
        {"study": "simclr", "seed": "-1"},
        "seed must be in",
    ),
    "cuda without a GPU": (classify, {**CLASSIFY, "device": "cuda"}, "device=cuda"),
    "unknown study": (tune, {"study": "no_such_study"}, "no_such_study"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_exit_2(case, run_main, tmp_path, monkeypatch):
    module, params, words = CASES[case]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also on a machine with a GPU
    code, line = run_main(module, argv(params))
    assert code == 2 and line.startswith("error: ") and words in line, line
    assert_nothing_left(tmp_path)


def test_unwritable_checkpoint_folder_and_artifact_store_are_found_first(run_main, tmp_path):
    with tmpfs(tmp_path / "checkpoints", "1m", readonly=True):
        code, line = run_main(classify, argv(CLASSIFY))
    assert code == 2 and line.startswith("error: checkpoint folder ") and "not writable" in line, line
    with tmpfs(tmp_path / "mlruns", "1m", readonly=True):
        code, line = run_main(classify, argv(CLASSIFY))
    assert code == 2 and line.startswith("error: artifact store ") and "not writable" in line, line
    assert not runs()


def test_unreachable_tracking_server(run_main, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://user:secret@127.0.0.1:9")
    code, line = run_main(classify, argv(CLASSIFY))
    assert code == 2 and "tracking server http://user:***@127.0.0.1:9 is unreachable" in line, line


def test_non_finite_loss_fails_the_run_with_one_line(run_main, tmp_path):
    code, line = run_main(classify, argv({**CLASSIFY, "lr": "1e30", "epochs": "1"}))
    assert code == 1 and line.startswith("error: loss is ") and "at step 7 (epoch 1)" in line, line
    (run,) = runs()
    assert run.info.status == "FAILED" and run.data.tags[END_REASON_TAG] == line
    assert_nothing_left(tmp_path)


def test_through_mlflow_run_the_launcher_run_says_why(tmp_path):
    code, err = finish(
        launch("classify", {**CLASSIFY, "batch_size": "512", "cutmix_prob": "1.0"}, via="mlflow")
    )
    assert code == 1  # MLflow's launcher exits 1 for any failure of its command
    assert "error: batch_size=512 exceeds the" in err
    (run,) = runs()
    assert run.info.status == "FAILED"
    assert run.data.tags[END_REASON_TAG].startswith("error: batch_size=512 exceeds the")
    assert not mlflow.search_registered_models() and not list((tmp_path / "checkpoints").rglob("*"))
