"""SimCLR on real photographs at a short budget (not a test): our recipe (defaults, and variants of it)
vs lightly's CIFAR-10 benchmark recipe vs a random-init encoder, on the same images, split and epochs.

Every encoder is judged by the same probe: a logistic regression (scikit-learn, standardised features,
the L2 penalty of ``linear_eval`` and the probe monitor) on the frozen encoder's features of all labelled
training images, scored on the test split. Ours is
trained by the very code of ``mlflow run . -e simclr`` (``pretrain.build`` + ``create_trainer``)
without the MLflow callbacks; its kNN monitor runs every epoch as in a real run.

lightly's recipe is its CIFAR-10 benchmark: ``SimCLRTransform(input_size=32, cj_strength=0.5,
gaussian_blur=0)`` on PIL images in DataLoader workers, ``SimCLRProjectionHead(512, 512, 128)``,
``NTXentLoss`` (temperature 0.5), SGD lr 0.06 x batch/128, momentum 0.9, weight decay 5e-4, cosine
over the epochs, fp32; with the same ResNet-18 (CIFAR stem) as ours.

    python bench/simclr_recipe.py --data_dir ../shared/data/cifar10_subset --epochs 15 --seeds 0 1 2
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
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from projects.core.config import from_dict  # noqa: E402
from projects.core.data import (  # noqa: E402
    ImageArrays,
    load_split,
    split_train_val,
    stratified_fraction,
)
from projects.core.datasets import get_dataset  # noqa: E402
from projects.core.evaluate import PROBE_WEIGHT_DECAY  # noqa: E402
from projects.core.loop import resolve_device  # noqa: E402
from projects.core.models import create_model  # noqa: E402
from projects.core.trainer_factory import create_trainer  # noqa: E402
from projects.ssl.methods.simclr import Config, SimCLR  # noqa: E402
from projects.ssl.pretrain import build  # noqa: E402

# Variants of our recipe: overrides of simclr's Config defaults (AdamW 1e-3, 10 warmup epochs, colour
# jitter 1.0, MLP head, temperature 0.5). "lightly_like" takes lightly's optimiser, jitter and head.
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "warmup1": {"warmup_fraction": 0.067},
    "lightly_like": {
        "optimizer": "sgd",
        "lr": 0.12,
        "weight_decay": 5e-4,
        "warmup_fraction": 0,
        "color_jitter": 0.5,
        "head": "mlp_bn",
    },
    "lightly_like_cj1": {
        "optimizer": "sgd",
        "lr": 0.12,
        "weight_decay": 5e-4,
        "warmup_fraction": 0,
        "color_jitter": 1.0,
        "head": "mlp_bn",
    },
    "lightly_like_mlp": {
        "optimizer": "sgd",
        "lr": 0.12,
        "weight_decay": 5e-4,
        "warmup_fraction": 0,
        "color_jitter": 0.5,
        "head": "mlp",
    },
    "lightly_like_t02": {
        "optimizer": "sgd",
        "lr": 0.12,
        "weight_decay": 5e-4,
        "warmup_fraction": 0,
        "color_jitter": 0.5,
        "head": "mlp_bn",
        "temperature": 0.2,
    },
}


def encoder_features(encoder: nn.Module, data: ImageArrays, mean, std, device: torch.device) -> np.ndarray:
    """Frozen-encoder features (fp32, eval mode) of every image, normalised with the recipe's statistics."""
    encoder.eval().to(device)
    mean_t = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=device).view(1, 3, 1, 1)
    out = []
    with torch.no_grad():
        for i in range(0, len(data), 1024):
            x = torch.tensor(data.images[i : i + 1024], device=device).permute(0, 3, 1, 2).float() / 255
            out.append(encoder((x - mean_t) / std_t).float().cpu())
    return torch.cat(out).numpy()


def probe_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    """Test top-1 (%) of a logistic regression on standardised frozen features (scikit-learn), with the
    L2 penalty of the project's probe (``PROBE_WEIGHT_DECAY`` in mean-loss form: C = 1 / (wd n))."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    c = 1.0 / (PROBE_WEIGHT_DECAY * len(train_x))
    clf = LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(train_x), train_y)
    return 100.0 * float((clf.predict(scaler.transform(test_x)) == test_y).mean())


def probe(encoder: nn.Module, train: ImageArrays, test: ImageArrays, mean, std, device) -> float:
    return probe_accuracy(
        encoder_features(encoder, train, mean, std, device),
        train.labels,
        encoder_features(encoder, test, mean, std, device),
        test.labels,
    )


def train_ours(params: dict[str, Any], device: torch.device) -> tuple[nn.Module, float, list[float]]:
    """Our SimCLR, as the entry point trains it (minus MLflow): encoder, training seconds, kNN curve."""
    cfg = from_dict(Config, {"register": False, "resume": False, **params})
    setup = build(cfg, SimCLR, device)
    trainer = create_trainer(cfg, setup.model, **setup.trainer_args(), device=device, progress=False)
    start = time.perf_counter()
    trainer.fit()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (
        setup.model.encoder,
        time.perf_counter() - start,
        [h[setup.monitor.metric] for h in trainer.history],
    )


def train_lightly(
    pretrain: ImageArrays,
    epochs: int,
    batch_size: int,
    seed: int,
    workers: int,
    device: torch.device,
    stem: str = "cifar",
) -> tuple[nn.Module, float]:
    """lightly's CIFAR-10 benchmark recipe on ``pretrain`` with our ResNet-18 (CIFAR stem by default)."""
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead
    from lightly.transforms import SimCLRTransform
    from PIL import Image

    torch.manual_seed(seed)
    transform = SimCLRTransform(input_size=32, cj_strength=0.5, gaussian_blur=0.0)

    class Views(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(pretrain)

        def __getitem__(self, i: int):
            return transform(Image.fromarray(pretrain.images[i])), int(pretrain.labels[i])

    loader = torch.utils.data.DataLoader(
        Views(),
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(seed),
    )
    backbone = create_model("resnet18", num_classes=0, stem=stem)
    model = nn.Sequential(backbone, SimCLRProjectionHead(512, 512, 128)).to(device)
    criterion = NTXentLoss()
    optimizer = torch.optim.SGD(
        model.parameters(), lr=6e-2 * batch_size / 128, momentum=0.9, weight_decay=5e-4
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for (x0, x1), _ in loader:
            x0, x1 = x0.to(device, non_blocking=True), x1.to(device, non_blocking=True)
            loss = criterion(model(x0), model(x1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return backbone, time.perf_counter() - start


def lightly_normalize() -> tuple[tuple[float, ...], tuple[float, ...]]:
    from lightly.transforms.utils import IMAGENET_NORMALIZE

    return tuple(IMAGENET_NORMALIZE["mean"]), tuple(IMAGENET_NORMALIZE["std"])


def emit(out: Path | None, row: dict[str, Any]) -> None:
    print(json.dumps(row), flush=True)
    if out is not None:
        with out.open("a") as handle:
            handle.write(json.dumps(row) + "\n")


def compare(
    data_dir: str,
    epochs: int,
    seeds: list[int],
    variants: list[str],
    device: torch.device,
    *,
    ablation_seeds: list[int] | None = None,
    lightly: bool = True,
    workers: int = 8,
    compile: str = "false",
    fraction: float = 1.0,
    overrides: dict[str, Any] | None = None,
    probe_images: int | None = None,
    out: Path | None = None,
) -> list[dict[str, Any]]:
    """One row per (recipe, seed): probe top-1, training seconds; ours also its kNN curve.

    Random init, our defaults and lightly run for every seed; the other ``variants`` for the seeds in
    ``ablation_seeds`` (default: all). ``overrides`` apply to every run of ours; ``probe_images`` limits
    the probe's images (only for quick checks of the code).
    """
    train = load_split("cifar10", "train", data_dir, download=False)
    test = load_split("cifar10", "test", data_dir, download=False)
    rows = []
    base = {"dataset": "cifar10", "data_dir": data_dir, "download": False, "epochs": epochs}
    base |= {"compile": compile, "num_workers": workers, "fraction": fraction, **(overrides or {})}
    full_train = train
    if probe_images:  # a quick check of the code paths, not a measurement
        train, test = train.subset(np.arange(probe_images)), test.subset(np.arange(probe_images // 2))
    spec = get_dataset("cifar10")
    mean, std = spec.mean, spec.std
    for seed in seeds:
        torch.manual_seed(seed)
        encoder = create_model("resnet18", num_classes=0, stem="cifar")
        rows.append(
            {"recipe": "random", "seed": seed, "probe_top1": probe(encoder, train, test, mean, std, device)}
        )
        emit(out, rows[-1])
        ablation = ablation_seeds is None or seed in ablation_seeds
        for name in [v for v in variants if v == "defaults" or ablation]:
            encoder, seconds, curve = train_ours({**base, **VARIANTS[name], "seed": seed}, device)
            top1 = probe(encoder, train, test, mean, std, device)
            rows.append(
                {
                    "recipe": f"ours:{name}",
                    "seed": seed,
                    "probe_top1": top1,
                    "train_s": seconds,
                    "monitor_curve": curve,
                }
            )
            emit(out, rows[-1])
        if lightly:
            pretrain, _ = split_train_val(full_train, 0.1, seed)  # the images ours pretrains on
            pretrain = stratified_fraction(pretrain, fraction, seed)
            encoder, seconds = train_lightly(pretrain, epochs, Config.batch_size, seed, workers, device)
            top1 = probe(encoder, train, test, *lightly_normalize(), device)
            rows.append({"recipe": "lightly", "seed": seed, "probe_top1": top1, "train_s": seconds})
            emit(out, rows[-1])
    return rows


def summarize(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'recipe':32s} {'n':>2s} {'probe top-1 mean':>17s} {'std':>5s} {'train s':>8s}"]
    for recipe in dict.fromkeys(r["recipe"] for r in rows):
        accs = np.array([r["probe_top1"] for r in rows if r["recipe"] == recipe])
        secs = [r["train_s"] for r in rows if r["recipe"] == recipe and "train_s" in r]
        mean_s = f"{np.mean(secs):8.1f}" if secs else f"{'-':>8s}"
        lines.append(f"{recipe:32s} {len(accs):2d} {accs.mean():17.2f} {accs.std():5.2f} {mean_s}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data_dir", default="../shared/data/cifar10_subset")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=["defaults"], choices=list(VARIANTS))
    parser.add_argument("--ablation_seeds", type=int, nargs="*", default=None, help="default: all seeds")
    parser.add_argument("--no_lightly", action="store_true")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--compile", default="false", choices=("auto", "true", "false"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=None, help="append JSON lines here")
    args = parser.parse_args()
    rows = compare(
        args.data_dir,
        args.epochs,
        args.seeds,
        args.variants,
        resolve_device(args.device),
        ablation_seeds=args.ablation_seeds,
        lightly=not args.no_lightly,
        workers=args.workers,
        compile=args.compile,
        out=args.out,
    )
    print(summarize(rows))


if __name__ == "__main__":
    main()
