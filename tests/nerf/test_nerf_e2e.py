"""End to end through ``mlflow run . -e nerf`` on a slice of the real lego scene (Blender format)."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient
from nerf_helpers import mlflow_run

from projects.nerf.export import ply_vertex_count

ITERS = 30


def artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> list[str]:
    paths = []
    for item in client.list_artifacts(run_id, path):
        paths += artifact_paths(client, run_id, item.path) if item.is_dir else [item.path]
    return paths


def test_blender_scene_end_to_end(tiny_lego: Path, fake_alexnet: Path, tmp_path: Path) -> None:
    proc = mlflow_run(
        f"data={tiny_lego}",
        f"max_iters={ITERS}",
        "video_seconds=0.5",
        "video_resolution=32",
        "num_points=1000",
        f"lpips_weights={fake_alexnet}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient()
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    run_id, metrics, tags = run.info.run_id, run.data.metrics, run.data.tags
    assert run.info.status == "FINISHED"
    assert tags["nerf.data_kind"] == "blender" and tags["nerf.preset"] == "cpu-small"
    assert tags["nerf.lpips"] == "alex"
    assert metrics["data/frames"] == 20

    # Training curves, with steps, from nerfstudio's writer.
    for name in ("train_loss_step", "train/psnr", "lr/fields"):
        steps = [m.step for m in client.get_metric_history(run_id, name)]
        assert steps == [0, 10, 20], (name, steps)
    assert client.get_metric_history(run_id, "train_rays_per_sec")[-1].value > 0

    # ns-eval: PSNR, SSIM, LPIPS with stds, rays/s; the JSON and the test views.
    for name in ("psnr", "ssim", "lpips"):
        assert math.isfinite(metrics[f"test_{name}"]) and math.isfinite(metrics[f"test_{name}_std"])
    assert 5 < metrics["test_psnr"] < 40 and 0 < metrics["test_ssim"] <= 1
    assert metrics["test_rays_per_sec"] > 0
    paths = artifact_paths(client, run_id)
    results = json.loads(
        Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="eval/eval.json")).read_text()
    )["results"]
    assert results["psnr"] == metrics["test_psnr"]
    assert "eval/test_views_ground_truth_left_render_right.png" in paths

    # The video: an mp4 of the requested length.
    video = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="video/orbit.mp4"))
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=width,height,nb_frames",
            "-of",
            "json",
            str(video),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    stream = json.loads(probe.stdout)["streams"][0]
    assert (stream["height"], int(stream["nb_frames"])) == (32, 12)
    assert abs(metrics["video/seconds"] - 0.5) < 0.05

    # The point cloud and its size.
    ply = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="pointcloud/point_cloud.ply"))
    assert ply_vertex_count(ply) == metrics["pointcloud/num_points"] > 0

    # nerfstudio's config and final checkpoint, registered with the champion alias.
    assert "nerfstudio/config.yml" in paths
    assert f"nerfstudio/nerfstudio_models/step-{ITERS - 1:09d}.ckpt" in paths
    champion = client.get_model_version_by_alias(f"nerf-{tiny_lego.name}", "champion")
    assert champion.run_id == run_id
    assert float(champion.tags["test_psnr"]) == metrics["test_psnr"]
    registered = Path(mlflow.artifacts.download_artifacts(f"models:/nerf-{tiny_lego.name}@champion"))
    assert (registered / "config.yml").is_file()
    assert (registered / "nerfstudio_models" / f"step-{ITERS - 1:09d}.ckpt").is_file()
