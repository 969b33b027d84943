"""NeRF entry point: poses (COLMAP) -> nerfacto training -> ns-eval -> video -> point cloud -> registry.

``python -m projects.nerf.train --data path/to/video.mp4`` or
``mlflow run . -e nerf -P data=../shared/data/nerf_synthetic_lego_200 -P max_iters=3000 --env-manager local``.
Everything nerf-specific is nerfstudio's own code (ns-process-data, ns-train's TrainerConfig/Trainer,
ns-eval, ns-render, ns-export), run in this process so that the few fixes it needs here apply (see
``lpips.py`` and ``checkpoints.py``).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
import torch

from projects.core.config import check, check_positive, param, validate_choices
from projects.core.entry import main
from projects.core.tracking import tracked_run
from projects.nerf import method
from projects.nerf.checkpoints import allow_numpy_scalars, install_atomic_save, latest_checkpoint
from projects.nerf.evaluate import evaluate
from projects.nerf.export import export_point_cloud
from projects.nerf.inputs import Capture, detect
from projects.nerf.lpips import setup_lpips
from projects.nerf.poses import estimate_poses
from projects.nerf.register import log_nerfstudio_files, model_name, register_scene
from projects.nerf.render import CAMERA_PATHS, render_video
from projects.nerf.writer import MlflowWriter, attach, detach

log = logging.getLogger("projects.nerf")


@dataclass
class Config:
    """Reconstruct a scene with nerfacto from a video, photos, or a nerfstudio/Blender dataset."""

    data: str = param(
        "", "video file, folder of photos, nerfstudio dataset (transforms.json) or Blender dataset"
    )
    max_iters: int = param(30000, "training iterations")
    preset: str = param(
        "auto",
        "model size: cpu-small (fast on CPU), nerfacto (defaults); auto picks by device",
        choices=method.PRESETS,
    )
    rays_per_batch: int = param(
        0, "training rays per batch; 0 = the preset's (cpu-small 1024, nerfacto 4096)"
    )
    seed: int = param(42, "random seed (nerfstudio's machine.seed)")
    device: str = param("auto", "cpu, cuda, or auto (cuda when available)", choices=("auto", "cpu", "cuda"))
    matching: str = param(
        "auto",
        "COLMAP matcher; auto = exhaustive for photos, sequential for video",
        choices=("auto", "exhaustive", "sequential"),
    )
    num_frames: int = param(300, "frames to extract from a video (nerfstudio's num_frames_target)")
    min_registered: float = param(0.5, "fail if COLMAP registers fewer than this fraction of the frames")
    lpips_weights: str = param("", "local alexnet-owt-7be5be79.pth for LPIPS; default: the torch hub cache")
    video_seconds: float = param(4.0, "length of the rendered video")
    video_resolution: int = param(0, "video height in pixels; 0 = the training images' height")
    camera_path: str = param("orbit", "video camera path", choices=CAMERA_PATHS)
    num_points: int = param(100000, "points to export in the point cloud")
    register: bool = param(True, "register the scene in the model registry (champion on test PSNR)")
    resume: bool = param(True, "continue an interrupted run with the same params")

    def __post_init__(self) -> None:
        validate_choices(self)
        check(bool(self.data), "data is required: a video, a folder of photos, or a dataset folder")
        check_positive(self, "max_iters", "num_frames", "video_seconds", "num_points")
        check(self.rays_per_batch >= 0, f"rays_per_batch must be >= 0, got {self.rays_per_batch}")
        check(self.video_resolution >= 0, f"video_resolution must be >= 0, got {self.video_resolution}")
        check(0 < self.min_registered <= 1, f"min_registered must be in (0, 1], got {self.min_registered}")
        check(self.device != "cuda" or torch.cuda.is_available(), "device=cuda but CUDA is not available")
        check(
            not self.lpips_weights or Path(self.lpips_weights).expanduser().is_file(),
            f"lpips_weights={self.lpips_weights} does not exist",
        )
        self.capture: Capture = detect(self.data)  # bad data fails here, before any compute

    @property
    def torch_device(self) -> str:
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    @property
    def scene(self) -> str:
        path = self.capture.path.resolve()
        return path.stem if path.is_file() else path.name


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Log a stage's start and its wall time (``time/<name>_s``)."""
    log.info("nerf: %s ...", name)
    start = time.perf_counter()
    yield
    seconds = time.perf_counter() - start
    mlflow.log_metric(f"time/{name}_s", seconds)
    log.info("nerf: %s done in %.1f s", name, seconds)


def train(ns_config: object, max_iters: int, resumed: bool) -> Path:
    """nerfstudio's ``ns-train`` main on ``ns_config``, continuing from its last checkpoint on a resume."""
    from nerfstudio.scripts.train import main as ns_train

    checkpoint_dir = Path(ns_config.get_checkpoint_dir())  # type: ignore[attr-defined]
    latest = latest_checkpoint(checkpoint_dir) if resumed else None
    start = latest[1] + 1 if latest else 0
    if start < max_iters:
        if latest:
            log.info("nerf: resuming from %s", latest[0])
            ns_config.load_dir = checkpoint_dir  # type: ignore[attr-defined]
        # nerfstudio runs max_num_iterations steps after the loaded one.
        ns_config.max_num_iterations = max_iters - start  # type: ignore[attr-defined]
        writer = MlflowWriter(every=ns_config.logging.steps_per_log)  # type: ignore[attr-defined]
        attach(writer)
        try:
            ns_train(ns_config)  # type: ignore[arg-type]
        finally:
            detach(writer)
    final = latest_checkpoint(checkpoint_dir)
    if final is None or final[1] < max_iters - 1:
        # nerfstudio's launcher swallows Ctrl-C and returns: the run must end KILLED, not go on to eval.
        raise KeyboardInterrupt
    return final[0]


def run(config: Config) -> None:
    # nerfstudio 1.1.5 on torch 2.x repeats these on every rendered batch; they say nothing about the run.
    warnings.filterwarnings("ignore", message="Using a non-tuple sequence for multidimensional indexing")
    warnings.filterwarnings("ignore", message=r"`torch\.cuda\.amp\.custom_(fwd|bwd)")
    device = config.torch_device
    preset = method.resolve_preset(config.preset, device)
    capture = config.capture
    run_name = f"nerf-{config.scene}"
    with tracked_run(config, "nerf", run_name=run_name, device=device) as tr:
        mlflow.set_tags({"nerf.data_kind": capture.kind, "nerf.preset": preset, "nerf.scene": config.scene})
        log.info(
            "nerf: %s input %s (%d %s)",
            capture.kind,
            capture.path,
            capture.count,
            "frames" if capture.kind == "video" else "images",
        )
        run_dir = tr.checkpoint_dir.resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        allow_numpy_scalars()
        install_atomic_save(run_dir)
        lpips = setup_lpips(config.lpips_weights, run_dir / "torch_hub")
        mlflow.set_tag("nerf.lpips", "alex" if lpips else "absent")

        dataset = capture.path
        if capture.needs_poses:
            matching = config.matching
            if matching == "auto":
                matching = "sequential" if capture.kind == "video" else "exhaustive"
            with stage("poses"):
                poses = estimate_poses(
                    capture, run_dir / "dataset", matching, config.num_frames, config.min_registered
                )
            mlflow.log_metrics(
                {"data/frames_extracted": poses.frames, "data/frames_registered": poses.registered}
            )
            dataset = poses.dataset
        else:
            mlflow.log_metric("data/frames", capture.count)

        ns_config = method.trainer_config(
            dataset=dataset.resolve(),
            kind=capture.kind,
            preset=preset,
            device=device,
            max_iters=config.max_iters,
            rays_per_batch=config.rays_per_batch or method.PRESET_RAYS[preset],
            seed=config.seed,
            output_dir=run_dir,
            experiment_name=config.scene,
        )
        with stage("train"):
            checkpoint = train(ns_config, config.max_iters, tr.resumed)
        base = Path(ns_config.get_base_dir())
        config_yml = base / "config.yml"
        log_nerfstudio_files(base, checkpoint)

        outputs = run_dir / "outputs"
        with stage("eval"):
            metrics = evaluate(config_yml, outputs)
        log.info("nerf: test %s", ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if "std" not in k))
        with stage("render"):
            render_video(
                config_yml, outputs, config.camera_path, config.video_seconds, config.video_resolution
            )
        with stage("export"):
            export_point_cloud(config_yml, outputs / "pointcloud", config.num_points)
        if config.register:
            version = register_scene(model_name(config.scene), metrics["test_psnr"])
            log.info("nerf: registered %s v%s", model_name(config.scene), version)


if __name__ == "__main__":
    main(Config, run)
