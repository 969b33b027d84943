"""The nerf entry point's overhead over plain ``ns-train`` for the same iterations (one run each; not a test).

Both train the identical nerfstudio TrainerConfig (built by projects.nerf.method, saved as config.yml and
given to ``ns-train nerfacto --load-config``), so the difference is what the entry point adds: the MLflow
writer, atomic checkpoints, the run bookkeeping. Compared:

1. nerfstudio's own "Train Total (time)" (the training loop, from its tensorboard events) in both;
2. process wall time up to the end of training: ``ns-train``'s whole process against the entry point's
   process minus its post-training stages (eval, video, point cloud, registry), which ns-train lacks.

Plain ns-train cannot build nerfacto offline (LPIPS downloads AlexNet), so both runs get a TORCH_HOME
with a stand-in AlexNet file of the right shapes; both then pay the same LPIPS construction.

    .venv/bin/python bench/nerf_overhead.py --iters 300
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from mlflow.tracking import MlflowClient

from projects.nerf import method
from projects.nerf.inputs import detect
from projects.nerf.lpips import ALEXNET_FILE

REPO = Path(__file__).resolve().parents[1]
LEGO = REPO.parent / "shared" / "data" / "nerf_synthetic_lego_200"
BIN = Path(sys.executable).parent
POST_TRAINING = ("time/eval_s", "time/render_s", "time/export_s")


def stand_in_alexnet(torch_home: Path) -> None:
    shapes = {k: v.shape for k, v in torchvision.models.alexnet(weights=None).state_dict().items()}
    path = torch_home / "hub" / "checkpoints" / ALEXNET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: torch.full((1,), 0.01).expand(s) for k, s in shapes.items()}, path)


def with_few_test_views(data: Path, work: Path, views: int) -> Path:
    """The same Blender scene with only ``views`` test views: the bench is about training, not ns-eval."""
    copy = work / data.name
    copy.mkdir()
    for split in ("train", "val", "test"):
        (copy / split).symlink_to((data / split).resolve())
        meta = json.loads((data / f"transforms_{split}.json").read_text())
        if split == "test":
            meta["frames"] = meta["frames"][:views]
        (copy / f"transforms_{split}.json").write_text(json.dumps(meta))
    return copy


def train_loop_seconds(base_dir: Path) -> float:
    """nerfstudio's TOTAL_TRAIN_TIME event from the run's tensorboard files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(base_dir), size_guidance={"scalars": 0})
    events.Reload()
    return events.Scalars("Train Total (time)")[-1].value


def timed(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> float:
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    with log.open("w") as out:
        subprocess.run(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(LEGO))
    parser.add_argument("--iters", type=int, default=300)
    parser.add_argument("--test_views", type=int, default=3, help="test views kept (Blender data)")
    parser.add_argument("--preset", default="cpu-small", choices=method.PRESETS[1:])
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="nerf_bench_"))
    stand_in_alexnet(work / "torch_home")
    env = {
        **os.environ,
        "TORCH_HOME": str(work / "torch_home"),
        "PYTHONPATH": str(REPO),
        "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
        "PROJECTS_CHECKPOINT_DIR": str(work / "ckpt"),
    }
    capture = detect(args.data)
    if capture.kind == "blender":
        capture = detect(with_few_test_views(capture.path, work, args.test_views))
    device = "cuda" if torch.cuda.is_available() else "cpu"

    # 1. plain ns-train on the same TrainerConfig the entry point builds.
    config = method.trainer_config(
        dataset=capture.path.resolve(),
        kind=capture.kind,
        preset=args.preset,
        device=device,
        max_iters=args.iters,
        rays_per_batch=method.PRESET_RAYS[args.preset],
        seed=42,
        output_dir=work / "ns-train",
        experiment_name=capture.path.name,
    )
    config.save_config()
    ns_wall = timed(
        [str(BIN / "ns-train"), "nerfacto", "--load-config", str(config.get_base_dir() / "config.yml")],
        env,
        work,
        work / "ns-train.log",
    )
    ns_loop = train_loop_seconds(config.get_base_dir())

    # 2. the entry point, same iterations and preset, short video and point cloud.
    ours_wall = timed(
        [
            sys.executable,
            "-m",
            "projects.nerf.train",
            "--data",
            str(capture.path),
            "--max_iters",
            str(args.iters),
            "--preset",
            args.preset,
            "--video_seconds",
            "1",
            "--video_resolution",
            "50",
            "--num_points",
            "10000",
            "--register",
            "false",
        ],
        env,
        work,
        work / "entry.log",
    )
    (run,) = MlflowClient(env["MLFLOW_TRACKING_URI"]).search_runs(["0"])
    metrics = run.data.metrics
    ours_base = next((work / "ckpt" / run.info.run_id).glob("*/nerfacto/run"))
    ours_loop = train_loop_seconds(ours_base)
    ours_to_trained = ours_wall - sum(metrics.get(k, 0.0) for k in POST_TRAINING)

    print(f"\n{args.iters} iterations, preset {args.preset}, {device}, data {capture.path} ({capture.kind})")
    print(
        f"training loop (nerfstudio's Train Total): ns-train {ns_loop:7.1f} s  entry point {ours_loop:7.1f} s"
        f"   ratio {ours_loop / ns_loop:.3f}"
    )
    print(
        f"process wall to a trained scene:           ns-train {ns_wall:7.1f} s   entry point "
        f"{ours_to_trained:7.1f} s   ratio {ours_to_trained / ns_wall:.3f}"
    )
    stages = ", ".join(f"{k[5:-2]} {v:.1f} s" for k, v in sorted(metrics.items()) if k.startswith("time/"))
    print(f"entry point in all: {ours_wall:.1f} s ({stages}); test PSNR {metrics['test_psnr']:.2f}")
    print(f"logs and outputs: {work}")


if __name__ == "__main__":
    main()
