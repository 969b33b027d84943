"""Every GPU check and benchmark of the image studies in one call (not a test), ~5 minutes on one H100/H200.

1. Recipe on real photographs (``bench/simclr_recipe.py``): our SimCLR (defaults and variants) vs
   lightly's recipe vs random init on ``cifar10_subset``, one logistic probe, several seeds.
2. Throughput on uint8 data shaped like CIFAR-10 (50,000 random 32x32 images): SimCLR ResNet-18 at
   batch 512 and the ``classify`` recipe (ResNet-18, ViT; CutMix on) with ``pipeline=device
   augment=batched`` and with ``pipeline=workers augment=albumentations``: seconds per epoch, images/s,
   loop / compute-only ratio, peak GPU memory; SimCLR also compiled.
3. Both pipelines on ``synthetic`` at equal epochs, 3 seeds: probe top-1 (no accuracy cost of batching).

Rows are printed as JSON lines and appended to ``$OUT/gpu.jsonl`` (or ``--out``) as they finish, so a
call cut short still returns what it measured; a summary table is printed last.

    python bench/gpu.py --data_dir .gpu_data/cifar10_subset
    python bench/gpu.py --smoke          # seconds on a CPU: every code path, tiny sizes
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import simclr_recipe  # noqa: E402

from projects.core import pipeline  # noqa: E402
from projects.core.batch_augment import Normalize, StandardAugment, ViewAugment  # noqa: E402
from projects.core.classifier_recipe import (  # noqa: E402
    ClassifierBatch,
    NamedModelConfig,  # noqa: E402
    classification_step,
    create_mixup,
)
from projects.core.config import from_dict  # noqa: E402
from projects.core.data import ImageArrays, load_split  # noqa: E402
from projects.core.datasets import get_dataset  # noqa: E402
from projects.core.loop import resolve_device  # noqa: E402
from projects.core.models import create_model  # noqa: E402
from projects.core.trainer_factory import create_trainer  # noqa: E402
from projects.core.transforms import ImageOnly, standard_train_transform  # noqa: E402
from projects.ssl.methods.simclr import Config as SimCLRConfig  # noqa: E402
from projects.ssl.methods.simclr import SimCLR  # noqa: E402
from projects.ssl.pretrain import create_encoder, ssl_step  # noqa: E402
from projects.ssl.views import BatchViews, TwoViews, view_augmentation  # noqa: E402

emit = simclr_recipe.emit
CIFAR10 = get_dataset("cifar10")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else 0.0


def fake_cifar(n: int) -> ImageArrays:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return ImageArrays(
        images, rng.integers(0, 10, n).astype(np.int64), "fake-cifar", [str(i) for i in range(10)]
    )


def compute_only(trainer, make_batch, steps: int, device: torch.device) -> float:
    """images/s of the model step alone on a ready batch on the device (same precision/memory format)."""
    trainer.model.to(device)
    if trainer.channels_last:
        trainer.model.to(memory_format=torch.channels_last)
    batch = make_batch()
    trainer.model.train()
    for _ in range(3):
        trainer.train_step(batch)
    sync(device)
    start, seen = time.perf_counter(), 0
    for _ in range(steps):
        seen += trainer.train_step(batch)[1]
    sync(device)
    return seen / (time.perf_counter() - start)


def time_epochs(trainer, epochs: int, device: torch.device) -> list[float]:
    """Wall seconds of each training epoch (no evaluation)."""
    trainer.model.to(device)
    if trainer.channels_last:
        trainer.model.to(memory_format=torch.channels_last)
    seconds = []
    for _ in range(epochs):
        sync(device)
        start = time.perf_counter()
        trainer.train_one_epoch()
        sync(device)
        seconds.append(time.perf_counter() - start)
        trainer.epoch += 1
    return seconds


def simclr_throughput(
    data: ImageArrays, mode: str, compile: str, workers: int, device, epochs: int, batch: int
) -> dict:
    cfg = from_dict(
        SimCLRConfig,
        {"dataset": "cifar10", "batch_size": batch, "epochs": 10, "compile": compile, "num_workers": workers},
    )
    augment = "batched" if mode == "device" else "albumentations"
    view = cfg.views()[0]
    per_image = TwoViews(view_augmentation("cifar10", 32, view))
    loader = pipeline.train_loader(
        data,
        pipeline=mode,
        augment=augment,
        per_image=per_image,
        batch_size=batch,
        num_workers=workers,
        device=device,
        seed=0,
        drop_last=True,
    )
    normalize = Normalize(CIFAR10.mean, CIFAR10.std)
    views = BatchViews(ViewAugment(normalize, 32, view, device=device))
    torch.manual_seed(0)
    model = SimCLR(create_encoder(cfg), cfg)
    reset_peak(device)
    trainer = create_trainer(
        cfg,
        model,
        loader,
        ssl_step,
        evaluate=None,
        monitor=None,
        device=device,
        progress=False,
        batch_transform=views if augment == "batched" else None,
    )
    start = time.perf_counter()
    seconds = time_epochs(trainer, epochs, device)
    first = seconds[0]
    x = torch.randn(batch, 3, 32, 32, device=device)
    compute = compute_only(trainer, lambda: ((x, x.clone()), None), 20, device)
    images = len(loader) * batch
    best = min(seconds[1:]) if len(seconds) > 1 else seconds[0]
    return {
        "bench": "simclr",
        "pipeline": mode,
        "augment": augment,
        "precision": trainer.precision,
        "compile": compile,
        "epoch_s": best,
        "first_epoch_s": first,
        "images_per_sec": images / best,
        "compute_only_images_per_sec": compute,
        "loop_over_compute": images / best / compute,
        "peak_gib": peak_gib(device),
        "total_s": time.perf_counter() - start,
    }


def classify_throughput(
    data: ImageArrays, model_name: str, mode: str, workers: int, device, epochs: int, batch: int
) -> dict:
    cfg = from_dict(
        NamedModelConfig,
        {
            "dataset": "cifar10",
            "model": model_name,
            "batch_size": batch,
            "epochs": 10,
            "cutmix_prob": 0.5,
            "num_workers": workers,
            "compile": "false",
        },
    )
    augment = "batched" if mode == "device" else "albumentations"
    loader = pipeline.train_loader(
        data,
        pipeline=mode,
        augment=augment,
        per_image=ImageOnly(standard_train_transform("cifar10", 32)),
        batch_size=batch,
        num_workers=workers,
        device=device,
        seed=0,
        drop_last=True,
    )
    normalize = Normalize(CIFAR10.mean, CIFAR10.std)
    standard = StandardAugment(normalize, 4, 0, device) if augment == "batched" else None
    torch.manual_seed(0)
    kwargs = {"stem": "cifar"} if model_name.startswith("resnet") else {"image_size": 32}
    model = create_model(model_name, num_classes=100, **kwargs)
    reset_peak(device)
    trainer = create_trainer(
        cfg,
        model,
        loader,
        classification_step(0.0),
        evaluate=None,
        monitor=None,
        device=device,
        progress=False,
        batch_transform=ClassifierBatch(standard, create_mixup(cfg, 100)),
    )
    seconds = time_epochs(trainer, epochs, device)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 100, (batch,), device=device)
    compute = compute_only(trainer, lambda: (x, y), 20, device)
    images = len(loader) * batch
    best = min(seconds[1:]) if len(seconds) > 1 else seconds[0]
    return {
        "bench": f"classify-{model_name}",
        "pipeline": mode,
        "augment": augment,
        "precision": trainer.precision,
        "epoch_s": best,
        "images_per_sec": images / best,
        "compute_only_images_per_sec": compute,
        "loop_over_compute": images / best / compute,
        "peak_gib": peak_gib(device),
    }


def synthetic_pipelines(
    epochs: int,
    seeds: list[int],
    workers: int,
    device,
    out,
    overrides: dict[str, Any] | None = None,
    probe_images: int | None = None,
) -> list[dict]:
    """Probe top-1 on ``synthetic`` after the same epochs with either pipeline (simclr defaults otherwise)."""
    train = load_split("synthetic", "train")
    test = load_split("synthetic", "test")
    if probe_images:
        train, test = train.subset(np.arange(probe_images)), test.subset(np.arange(probe_images // 2))
    spec = get_dataset("synthetic")
    mean, std = spec.mean, spec.std
    rows = []
    for seed in seeds:
        for augment, mode in (("batched", "device"), ("albumentations", "workers")):
            params = {"dataset": "synthetic", "epochs": epochs, "seed": seed, "monitor_bank": 2000}
            params |= {"augment": augment, "pipeline": mode, "num_workers": workers, **(overrides or {})}
            encoder, seconds, curve = simclr_recipe.train_ours(params, device)
            top1 = simclr_recipe.probe(encoder, train, test, mean, std, device)
            row = {"bench": "synthetic-pipelines", "augment": augment, "seed": seed, "probe_top1": top1}
            rows.append({**row, "train_s": seconds, "monitor_curve": curve})
            emit(out, rows[-1])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data_dir", default=".gpu_data/cifar10_subset")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check every path on a CPU")
    parser.add_argument("--parts", nargs="+", default=["recipe", "throughput", "synthetic"])
    parser.add_argument("--variants", nargs="+", default=list(simclr_recipe.VARIANTS))
    parser.add_argument("--synthetic_epochs", type=int, default=15)
    parser.add_argument(
        "--synthetic_overrides", default="{}", help='JSON, e.g. {"fraction": 0.2, "batch_size": 64}'
    )
    parser.add_argument("--synthetic_probe_images", type=int, default=None, help="default: all")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")) / "gpu.jsonl")
    args = parser.parse_args()
    device = resolve_device("auto")
    workers = min(12, max(1, (os.cpu_count() or 1) - 1))
    smoke = args.smoke
    if device.type == "cuda":
        emit(
            args.out, {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "workers": workers}
        )
    all_rows: list[dict[str, Any]] = []

    if "recipe" in args.parts:
        rows = simclr_recipe.compare(
            args.data_dir,
            1 if smoke else 15,
            [0] if smoke else [0, 1, 2],
            args.variants[:2] if smoke else args.variants,
            device,
            ablation_seeds=[0] if smoke else [0, 1],
            workers=2 if smoke else 8,
            fraction=0.07 if smoke else 1.0,
            overrides={"monitor_bank": 100, "val_fraction": 0.02} if smoke else None,
            probe_images=200 if smoke else None,
            out=args.out,
        )
        print(simclr_recipe.summarize(rows), flush=True)
        all_rows += rows

    if "throughput" in args.parts:
        data = fake_cifar(100 if smoke else 50_000)
        epochs = 1 if smoke else 3
        batch = 32 if smoke else 512
        runs = [("device", "false"), ("workers", "false"), ("device", "true")]
        for mode, compile in runs[:2] if smoke else runs:
            all_rows.append(simclr_throughput(data, mode, compile, workers, device, epochs, batch))
            emit(args.out, all_rows[-1])
        for name in ("resnet18", "vit_d192_l25"):
            for mode in ("device", "workers"):
                all_rows.append(
                    classify_throughput(data, name, mode, workers, device, 1 if smoke else 2, batch)
                )
                emit(args.out, all_rows[-1])

    if "synthetic" in args.parts:
        smoke_sizes = {"fraction": 0.06, "monitor_bank": 100, "val_fraction": 0.02}
        overrides = smoke_sizes if smoke else json.loads(args.synthetic_overrides)
        rows = synthetic_pipelines(
            1 if smoke else args.synthetic_epochs,
            [0] if smoke else [0, 1, 2],
            workers,
            device,
            args.out,
            overrides,
            200 if smoke else args.synthetic_probe_images,
        )
        all_rows += rows

    print("\n== throughput ==")
    for r in all_rows:
        if "epoch_s" in r:
            print(
                f"{r['bench']:18s} {r['pipeline']:8s} {r.get('compile', '-'):5s} {r['precision']:5s} "
                f"epoch {r['epoch_s']:7.2f} s  {r['images_per_sec']:9.0f} img/s  "
                f"loop/compute {r['loop_over_compute']:.3f}  peak {r['peak_gib']:.1f} GiB"
            )
    synth = [r for r in all_rows if r.get("bench") == "synthetic-pipelines"]
    for augment in ("batched", "albumentations"):
        accs = [r["probe_top1"] for r in synth if r["augment"] == augment]
        if accs:
            print(f"synthetic probe top-1, {augment}: {np.mean(accs):.2f} (seeds {accs})")


if __name__ == "__main__":
    main()
