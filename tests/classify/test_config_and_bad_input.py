"""One recipe for both models, and bad input: one line on stderr, exit 2, no run left RUNNING."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from projects.classify import compare, train
from projects.core.entry import EXIT_USER_ERROR, main
from tests.conftest import REPO

BAD_CLASSIFY = [
    (["--model", "nope"], "model='nope' is not allowed"),
    (["--model", "vit_d192_l25", "--patch_size", "5"], "patch_size=5 does not divide image size 32"),
    (["--model", "vit_d192_l25", "--image_size", "30"], "patch_size=4 does not divide image size 30"),
    (["--cutmix_prob", "1.5"], "cutmix_prob must be in [0, 1]"),
    (["--cutmix_prob", "-0.1"], "cutmix_prob must be in [0, 1]"),
    (["--cutmix_alpha", "0"], "cutmix_alpha must be > 0"),
    (["--cutmix_alpha", "-1"], "cutmix_alpha must be > 0"),
]
BAD_COMPARE = [
    (["--vit_model", "resnet18"], "vit_model='resnet18' is not allowed"),
    (["--patch_size", "3"], "patch_size=3 does not divide image size 32"),
    (["--cutmix_alpha", "0"], "cutmix_alpha must be > 0"),
]


def assert_nothing_running() -> None:
    client = MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments) if experiments else []
    assert [r.info.run_id for r in runs if r.info.status == "RUNNING"] == []


def test_compare_children_share_the_recipe_and_differ_only_in_model_lr_wd() -> None:
    cfg = compare.Config(epochs=3, batch_size=32, seed=7, cutmix_prob=1.0, vit_model="vit_d256_l14")
    cnn, vit = cfg.children()
    assert (cnn.model, vit.model) == ("resnet18", "vit_d256_l14")
    assert (cnn.lr, cnn.weight_decay, vit.lr, vit.weight_decay) == (1e-3, 0.0, 4e-4, 1e-5)
    differ = {
        f.name for f in dataclasses.fields(train.Config) if getattr(cnn, f.name) != getattr(vit, f.name)
    }
    assert differ == {"model", "lr", "weight_decay"}
    assert cnn.seed == 7 and cnn.epochs == 3 and cnn.cutmix_prob == 1.0
    same = compare.Config(per_model_lr=False, lr=5e-4, weight_decay=0.01).children()
    assert {(c.lr, c.weight_decay) for c in same} == {(5e-4, 0.01)}


@pytest.mark.parametrize(
    ("module", "argv", "message"),
    [
        *[(train, argv, msg) for argv, msg in BAD_CLASSIFY],
        *[(compare, argv, msg) for argv, msg in BAD_COMPARE],
    ],
)
def test_bad_input_one_line_exit_2(
    module, argv: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    called = []
    with pytest.raises(SystemExit) as exc:
        main(module.Config, called.append, argv)  # the entry point's own main, before any run starts
    assert exc.value.code == EXIT_USER_ERROR and called == []
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert_nothing_running()


def test_bad_input_from_the_command_line(isolated_mlflow: Path) -> None:
    """A real interpreter: ``python -m projects.classify.train --model nope`` prints one line, exits 2.

    One process only (start-up costs ~10 s of CPU); every other case runs the same ``main`` in-process above.
    """
    cmd = [sys.executable, "-m", "projects.classify.train", "--model", "nope"]
    proc = subprocess.run(cmd, cwd=REPO, env=os.environ, capture_output=True, text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == EXIT_USER_ERROR, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "model='nope' is not allowed" in lines[0]
    assert_nothing_running()


def test_cuda_without_a_gpu_is_refused_before_anything_runs(monkeypatch, capsys) -> None:
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    called = []
    with pytest.raises(SystemExit) as exc:
        main(train.Config, called.append, ["--device", "cuda"])
    assert exc.value.code == EXIT_USER_ERROR and called == []
    assert "device=cuda but no CUDA GPU" in capsys.readouterr().err
    assert_nothing_running()


def test_a_batch_larger_than_the_training_subset_is_refused_before_training(capsys) -> None:
    argv = ["--dataset", "synthetic", "--label_fraction", "0.01", "--batch_size", "512", "--epochs", "1"]
    with pytest.raises(SystemExit) as exc:
        main(train.Config, train.run, argv)
    assert exc.value.code == EXIT_USER_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert re.match(r"error: batch_size=512 exceeds the \d+ training images", err[-1]), err
    assert_nothing_running()
