"""Bad input: one clear line, exit 2, the run FAILED (when there is one), nothing registered."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from nerf_helpers import mlflow_run
from PIL import Image

from projects.core.entry import main
from projects.nerf.train import Config, run


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(Config, run, list(argv))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: "), err
    return err[-1]


def write_images(folder: Path, count: int, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def assert_nothing_registered() -> None:
    assert MlflowClient().search_registered_models() == []


def test_missing_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = run_main(capsys, "--data", str(tmp_path / "nope"))
    assert "does not exist" in line
    assert MlflowClient().search_runs([e.experiment_id for e in MlflowClient().search_experiments()]) == []


def test_video_without_frames(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    video = tmp_path / "silence.mp4"  # a valid mp4 holding only an audio stream
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "anullsrc", "-t", "0.5", str(video)], check=True
    )
    assert "no frames" in run_main(capsys, "--data", str(video))
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert "no frames" in run_main(capsys, "--data", str(tmp_path / "empty.mp4"))


def test_too_few_images(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = run_main(capsys, "--data", str(write_images(tmp_path / "two", 2)))
    assert "holds 2 image(s); at least 3" in line


def test_max_iters_below_one(capsys: pytest.CaptureFixture[str], tiny_lego: Path) -> None:
    assert "max_iters must be > 0" in run_main(capsys, "--data", str(tiny_lego), "--max_iters", "0")


def test_colmap_registers_too_few(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Independent noise images share no features: COLMAP cannot register them.
    line = run_main(capsys, "--data", str(write_images(tmp_path / "noise", 4)), "--max_iters", "5")
    assert "COLMAP registered 0 of 4 frames" in line or "ns-process-data failed" in line, line
    (failed,) = MlflowClient().search_runs([e.experiment_id for e in MlflowClient().search_experiments()])
    assert failed.info.status == "FAILED"
    assert failed.data.metrics.get("train_loss_step") is None
    assert_nothing_registered()


def test_mlflow_run_marks_bad_input_failed(tmp_path: Path) -> None:
    proc = mlflow_run(f"data={tmp_path / 'nope'}", cwd=tmp_path)
    assert proc.returncode != 0
    assert f"error: data={tmp_path / 'nope'} does not exist" in proc.stderr
    (failed,) = MlflowClient().search_runs([e.experiment_id for e in MlflowClient().search_experiments()])
    assert failed.info.status == "FAILED"
    assert_nothing_registered()
