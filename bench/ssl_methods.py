"""SSL methods side by side on real photographs at a short budget (not a test): every method of
:mod:`projects.ssl.methods` vs a random-init encoder, on the same images, split, epochs and seeds.

Each method is trained by the very code of ``mlflow run . -e <method>`` (``pretrain.build`` +
``create_trainer``, momentum callbacks included) without the MLflow callbacks. Every encoder is judged
by the same probe as ``bench/simclr_recipe.py``: a logistic regression on standardised frozen features
of all labelled training images, scored on the test split.

    python bench/ssl_methods.py --data_dir ../shared/data/cifar10_subset --epochs 20 --seeds 0 1 \\
        --overrides '{"stem": "imagenet"}' --out bench/results/cpu-ssl-methods.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from simclr_recipe import emit, encoder_features, probe_accuracy, summarize  # noqa: E402

from projects.core.config import from_dict  # noqa: E402
from projects.core.data import ImageArrays, load_split, stratified_index  # noqa: E402
from projects.core.datasets import get_dataset  # noqa: E402
from projects.core.loop import resolve_device  # noqa: E402
from projects.core.trainer_factory import create_trainer  # noqa: E402
from projects.ssl.methods import method_module, method_names  # noqa: E402
from projects.ssl.pretrain import build, create_encoder  # noqa: E402


def method_class(module) -> type:
    name = module.__name__.rsplit(".", 1)[-1]
    return next(v for v in vars(module).values() if isinstance(v, type) and getattr(v, "name", None) == name)


def train(method: str, params: dict[str, Any], device: torch.device):
    """One method, as its entry point trains it (minus MLflow): encoder, training seconds, kNN curve."""
    module = method_module(method)
    cfg = from_dict(module.Config, {"register": False, "resume": False, **params})
    setup = build(cfg, method_class(module), device)
    trainer = create_trainer(
        cfg, setup.model, **setup.trainer_args(), device=device, callbacks=setup.callbacks, progress=False
    )
    start = time.perf_counter()
    trainer.fit()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (
        setup.model.encoder,
        time.perf_counter() - start,
        [h[setup.monitor.metric] for h in trainer.history],
    )


def probes(encoder, train: ImageArrays, test: ImageArrays, label_fractions: list[float], seed: int, device):
    """Probe top-1 (%) at each share of the labelled training images (seeded, class-stratified), from one
    pass of feature extraction; key ``probe_top1`` for all labels, ``probe_top1@<fraction>`` otherwise."""
    spec = get_dataset("cifar10")
    train_x = encoder_features(encoder, train, spec.mean, spec.std, device)
    test_x = encoder_features(encoder, test, spec.mean, spec.std, device)
    out = {}
    for fraction in label_fractions:
        index = stratified_index(train.labels, fraction, seed) if fraction < 1 else np.arange(len(train))
        key = "probe_top1" if fraction >= 1 else f"probe_top1@{fraction:g}"
        out[key] = probe_accuracy(train_x[index], train.labels[index], test_x, test.labels)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data_dir", default="../shared/data/cifar10_subset")
    parser.add_argument("--methods", nargs="+", default=list(method_names()), choices=list(method_names()))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--overrides", default="{}", help='JSON for every method, e.g. {"stem": "imagenet"}')
    parser.add_argument("--label_fractions", type=float, nargs="+", default=[1.0, 0.1])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--probe_images", type=int, default=0, help="limit the probe (code checks only)")
    parser.add_argument("--out", type=Path, default=None, help="append JSON lines here")
    args = parser.parse_args()

    device = resolve_device(args.device)
    overrides = json.loads(args.overrides)
    train_set = load_split("cifar10", "train", args.data_dir, download=False)
    test_set = load_split("cifar10", "test", args.data_dir, download=False)
    if args.probe_images:
        train_set = train_set.subset(np.arange(args.probe_images))
        test_set = test_set.subset(np.arange(args.probe_images // 2))
    base = {
        "dataset": "cifar10",
        "data_dir": args.data_dir,
        "download": False,
        "epochs": args.epochs,
        **overrides,
    }
    rows = []
    for seed in args.seeds:
        torch.manual_seed(seed)
        random_cfg = from_dict(method_module("simclr").Config, {**base, "seed": seed})
        encoder = create_encoder(random_cfg)
        scores = probes(encoder, train_set, test_set, args.label_fractions, seed, device)
        rows.append({"recipe": "random", "seed": seed, **scores, **overrides})
        emit(args.out, rows[-1])
        for method in args.methods:
            encoder, seconds, curve = train(method, {**base, "seed": seed}, device)
            scores = probes(encoder, train_set, test_set, args.label_fractions, seed, device)
            rows.append(
                {
                    "recipe": method,
                    "seed": seed,
                    **scores,
                    "train_s": seconds,
                    "monitor_curve": curve,
                    **overrides,
                }
            )
            emit(args.out, rows[-1])
    print(summarize(rows))


if __name__ == "__main__":
    main()
