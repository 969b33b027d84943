"""Photos and videos through ns-process-data + COLMAP (CPU SIFT), then the whole chain."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from nerf_helpers import REPO, render_textured_scene

from projects.nerf.inputs import detect
from projects.nerf.poses import estimate_poses

VIEWS = 60  # 30 views around an object are too far apart for SfM; 60 register


@pytest.fixture(scope="module")
def ring_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_textured_scene(tmp_path_factory.mktemp("ring") / "photos", views=VIEWS, size=96)


def test_photos_through_colmap_to_a_scene(ring_photos: Path, tmp_path: Path) -> None:
    # sequential matching: these photos were taken in order around the object (and it is 3x faster).
    proc = subprocess.run(
        [sys.executable, "-m", "projects.nerf.train", "--data", str(ring_photos), "--matching", "sequential",
         "--max_iters", "20", "--video_seconds", "0.25", "--video_resolution", "32", "--num_points", "500"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = MlflowClient().search_runs(["0"])
    metrics = run.data.metrics
    assert run.info.status == "FINISHED" and run.data.tags["nerf.data_kind"] == "images"
    assert metrics["data/frames_extracted"] == VIEWS
    assert metrics["data/frames_registered"] >= 0.9 * VIEWS
    assert metrics["test/psnr"] > 5 and "test/lpips" not in metrics  # no AlexNet weights here: absent, not NaN
    assert run.data.tags["nerf.lpips"] == "absent"
    assert proc.stdout.count("LPIPS unavailable") == 1
    champion = MlflowClient().get_model_version_by_alias("nerf-photos", "champion")
    assert champion.run_id == run.info.run_id


def test_video_frames_through_colmap(ring_photos: Path, tmp_path: Path) -> None:
    video = tmp_path / "walkaround.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-framerate", "12", "-i", str(ring_photos / "view_%03d.png"),
                    "-pix_fmt", "yuv420p", "-crf", "12", str(video)], check=True)
    capture = detect(video)
    assert (capture.kind, capture.count) == ("video", VIEWS)
    poses = estimate_poses(capture, tmp_path / "dataset", "sequential", num_frames=VIEWS, min_registered=0.5)
    assert poses.frames == VIEWS
    assert poses.registered >= 0.9 * VIEWS
    assert (poses.dataset / "transforms.json").is_file()
