"""Fast checks of the pieces around nerfstudio: input kinds, curves writer, checkpoints, LPIPS, orbit."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from nerf_helpers import LEGO

from projects.core.errors import ConfigError
from projects.nerf import lpips
from projects.nerf.checkpoints import allow_numpy_scalars, latest_checkpoint
from projects.nerf.inputs import detect
from projects.nerf.render import look_at_center, orbit_poses
from projects.nerf.train import Config
from projects.nerf.writer import MlflowWriter, metric_name


def test_detects_each_kind(tiny_lego: Path, tmp_path: Path) -> None:
    assert (detect(LEGO).kind, detect(LEGO).count) == ("blender", 100)
    nerfstudio = tmp_path / "ns"
    nerfstudio.mkdir()
    (nerfstudio / "transforms.json").write_text(json.dumps({"frames": [{}] * 7}))
    assert (detect(nerfstudio).kind, detect(nerfstudio).count) == ("nerfstudio", 7)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        (photos / f"{i}.png").write_bytes((tiny_lego / "train" / "r_0.png").read_bytes())
    assert (detect(photos).kind, detect(photos).count) == ("images", 3)
    assert Config(data=str(photos)).capture.needs_poses


def test_config_rejects_bad_params(tiny_lego: Path) -> None:
    for bad in (
        {"preset": "huge"},
        {"min_registered": 0.0},
        {"video_seconds": 0.0},
        {"rays_per_batch": -1},
        {"lpips_weights": "/nope/alexnet.pth"},
        {"data": ""},
    ):
        with pytest.raises(ConfigError):
            Config(**{"data": str(tiny_lego), **bad})


def test_writer_names_and_logs_while_training() -> None:
    assert metric_name("Train Loss Dict/rgb_loss") == "train_loss_step/rgb_loss"
    assert metric_name("Train Metrics Dict/psnr") == "train/psnr"
    assert metric_name("Train Rays / Sec") == "train_rays_per_sec"
    assert metric_name("learning_rate/fields") == "lr/fields"
    assert metric_name("GPU Memory (MB)") == "gpu_memory_mb"
    client = MlflowClient()
    with mlflow.start_run() as active:
        writer = MlflowWriter(every=10, flush_seconds=0.0)
        for step in range(25):
            writer.write_scalar("Train Loss", torch.tensor(1.0 / (step + 1)), step)
            writer.write_scalar("Train Rays / Sec", 1000.0, step)
        writer.write_scalar_dict("Eval Images Metrics", {"psnr": 20.0}, 7)  # eval events are all kept
        # flush_seconds=0: each event is already in the store, before any end-of-training flush.
        history = client.get_metric_history(active.info.run_id, "train_loss_step")
        assert [m.step for m in history] == [0, 10, 20]
        assert history[1].value == pytest.approx(1 / 11)
        assert [m.step for m in client.get_metric_history(active.info.run_id, "val/image/psnr")] == [7]


def test_numpy_scalars_load_with_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "step-000000003.ckpt"
    torch.save({"step": 3, "schedulers": {"lr": np.float64(0.5), "n": np.int64(2)}}, path)
    before = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        with pytest.raises(pickle.UnpicklingError):
            torch.load(path, weights_only=True)
        allow_numpy_scalars()
        assert torch.load(path, weights_only=True)["schedulers"]["lr"] == 0.5
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(before)
    (tmp_path / "step-000000010.ckpt").write_bytes(b"")
    assert latest_checkpoint(tmp_path) == (tmp_path / "step-000000010.ckpt", 10)


@pytest.fixture
def restore_lpips_patches(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(torch.hub, "_hub_dir", torch.hub._hub_dir)
    yield
    lpips.restore_lpips()


def test_lpips_absent_without_weights(
    restore_lpips_patches: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import torchmetrics.image.lpip

    torch.hub.set_dir(str(tmp_path / "empty_hub"))
    monkeypatch.setattr(lpips, "_download", lambda: "URLError: no network")
    assert lpips.setup_lpips("", tmp_path / "hub") is False
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("LPIPS unavailable") and "no network" in lines[0]
    module = torchmetrics.image.lpip.LearnedPerceptualImagePatchSimilarity(normalize=True)
    assert isinstance(module, lpips.AbsentLPIPS)


def test_lpips_real_with_weights(restore_lpips_patches: None, fake_alexnet: Path, tmp_path: Path) -> None:
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    assert lpips.setup_lpips(str(fake_alexnet), tmp_path / "hub") is True
    assert lpips.cached_weights().resolve() == fake_alexnet.resolve()
    metric = LearnedPerceptualImagePatchSimilarity(
        normalize=True
    )  # loads torchvision's AlexNet from the cache
    value = metric(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))
    assert torch.isfinite(value)


def test_orbit_circles_what_the_cameras_look_at() -> None:
    center = np.array([0.5, -0.2, 0.1])
    # Cameras on a tilted ring around `center`, looking at it.
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    positions = center + np.stack([3 * np.cos(angles), 3 * np.sin(angles), np.full_like(angles, 1.5)], axis=1)
    poses = []
    for p in positions:
        back = (p - center) / np.linalg.norm(p - center)
        right = np.cross([0, 0, 1.0], back)
        right /= np.linalg.norm(right)
        pose = np.eye(4)
        pose[:3, :4] = np.stack([right, np.cross(back, right), back, p], axis=1)
        poses.append(pose)
    poses = np.stack(poses)
    assert np.allclose(look_at_center(poses), center, atol=1e-6)
    orbit = orbit_poses(poses, 24)
    for pose in orbit:
        to_center = center - pose[:3, 3]
        assert np.allclose(-pose[:3, 2], to_center / np.linalg.norm(to_center), atol=1e-6)
        assert np.linalg.norm(pose[:3, 3] - center) == pytest.approx(np.linalg.norm(positions[0] - center))
        assert np.allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-6)


class FakeNsConfig:
    """Just what ``train`` reads from nerfstudio's TrainerConfig."""

    def __init__(self, checkpoint_dir: Path) -> None:
        self.checkpoint_dir = checkpoint_dir
        self.load_dir: Path | None = None
        self.max_num_iterations = 0
        self.logging = type("Logging", (), {"steps_per_log": 10})()

    def get_checkpoint_dir(self) -> Path:
        return self.checkpoint_dir


def test_resume_continues_from_the_last_checkpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import nerfstudio.scripts.train

    from projects.nerf.train import train

    calls = []

    def ns_train(config: FakeNsConfig) -> None:  # stands in for ns-train: record, then save the last step
        calls.append((config.load_dir, config.max_num_iterations))
        (config.checkpoint_dir / "step-000000029.ckpt").write_bytes(b"")

    monkeypatch.setattr(nerfstudio.scripts.train, "main", ns_train)
    config = FakeNsConfig(tmp_path)
    (tmp_path / "step-000000019.ckpt").write_bytes(b"")
    with mlflow.start_run():
        assert train(config, 30, resumed=True) == tmp_path / "step-000000029.ckpt"
        assert calls == [(tmp_path, 10)]  # steps 20..29
        assert train(config, 30, resumed=True) == tmp_path / "step-000000029.ckpt"
        assert len(calls) == 1  # already trained: nothing to do
        # nerfstudio returns without a final checkpoint when Ctrl-C stopped it: the run ends KILLED.
        monkeypatch.setattr(nerfstudio.scripts.train, "main", lambda config: None)
        with pytest.raises(KeyboardInterrupt):
            train(FakeNsConfig(tmp_path / "fresh"), 30, resumed=False)
