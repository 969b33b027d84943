"""Photos and videos through ns-process-data + COLMAP (CPU SIFT); a video all the way to a scene."""

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


def test_photos_through_colmap(ring_photos: Path, tmp_path: Path) -> None:
    capture = detect(ring_photos)
    assert (capture.kind, capture.count) == ("images", VIEWS)
    # sequential: these photos were taken in order around the object (3x faster than exhaustive).
    poses = estimate_poses(capture, tmp_path / "dataset", "sequential", num_frames=300, min_registered=0.5)
    assert (poses.frames, poses.registered) == (VIEWS, VIEWS)
    assert len(list((poses.dataset / "images").iterdir())) == VIEWS
    # Too strict a threshold stops the run instead of training on what COLMAP left.
    with pytest.raises(Exception, match="COLMAP registered 60 of 60 frames, below min_registered"):
        estimate_poses(capture, tmp_path / "dataset", "sequential", num_frames=300, min_registered=1.01)


def test_video_through_colmap_to_a_scene(ring_photos: Path, tmp_path: Path) -> None:
    video = tmp_path / "walkaround.mp4"
    # Lossless 4:4:4, so that what COLMAP sees is the rendered photos, not codec artefacts.
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-framerate",
            "12",
            "-i",
            str(ring_photos / "view_%03d.png"),
            "-c:v",
            "libx264",
            "-qp",
            "0",
            "-pix_fmt",
            "yuv444p",
            str(video),
        ],
        check=True,
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "projects.nerf.train",
            "--data",
            str(video),
            "--num_frames",
            str(VIEWS),
            "--max_iters",
            "20",
            "--video_seconds",
            "0.25",
            "--video_resolution",
            "32",
            "--num_points",
            "500",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = MlflowClient().search_runs([e.experiment_id for e in MlflowClient().search_experiments()])
    metrics, tags = run.data.metrics, run.data.tags
    assert run.info.status == "FINISHED" and tags["nerf.data_kind"] == "video"
    assert metrics["data/frames_extracted"] == VIEWS
    assert metrics["data/frames_registered"] >= 0.9 * VIEWS
    # nerfstudio's own 90/10 split of the registered frames; no AlexNet weights here: LPIPS absent, not NaN.
    assert metrics["test_psnr"] > 5 and "test_lpips" not in metrics and tags["nerf.lpips"] == "absent"
    assert proc.stdout.count("LPIPS unavailable") == 1
    assert MlflowClient().get_model_version_by_alias("nerf-walkaround", "champion").run_id == run.info.run_id
