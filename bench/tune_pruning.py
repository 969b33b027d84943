"""Pruning pays: the same small study with the median pruner and without, same trials, in one run.

    .venv/bin/python bench/tune_pruning.py [--trials 16] [--epochs 8]

Both arms run the ``tune`` machinery (workers=1, random sampler with one seed, so both arms draw the same
params) on a cheap but real objective: a small CNN trained on the synthetic 10-class dataset with AdamW,
``val_top1`` per epoch on a held-out split. This file is that entry module too (``Config`` + ``run``,
tracked run, shared Trainer and callbacks). Prints total epochs trained and the best value per arm.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch import nn

from projects.core.callbacks import MLflowLogger
from projects.core.config import from_dict, param
from projects.core.data import (
    ArrayDataset,
    load_split,
    split_train_val,
    stratified_fraction,
    to_tensor_normalized,
)
from projects.core.evaluate import validate
from projects.core.loop import Callback, Trainer, make_loader
from projects.core.tracking import tracked_run


@dataclass
class Config:
    lr: float = param(1e-3, "AdamW learning rate")
    weight_decay: float = param(1e-4, "AdamW weight decay")
    epochs: int = param(8, "epochs")
    fraction: float = param(0.3, "share of the synthetic training split")
    batch_size: int = param(64, "images per step")
    seed: int = param(0, "seed")
    resume: bool = param(False, "unused (tune sets it)")
    register: bool = param(False, "unused (tune sets it)")


def small_cnn(num_classes: int = 10) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, num_classes),
    )


def step(model: nn.Module, batch) -> tuple[torch.Tensor, int]:
    images, labels = batch
    return F.cross_entropy(model(images), labels), len(images)


def run(cfg: Config, *, callbacks: Sequence[Callback] = (), nested: bool = False) -> dict[str, float]:
    torch.manual_seed(cfg.seed)
    train, val = split_train_val(load_split("synthetic", "train"), 0.1, cfg.seed)
    train = stratified_fraction(train, cfg.fraction, cfg.seed)
    tf = to_tensor_normalized("synthetic")
    train_loader = make_loader(ArrayDataset(train, tf), cfg.batch_size, True, 0, seed=cfg.seed)
    val_loader = make_loader(ArrayDataset(val, tf), 500, False, 0)
    model = small_cnn()
    with tracked_run(cfg, "bench_cnn", run_name=f"cnn-lr{cfg.lr:.1e}", nested=nested) as tr:
        trainer = Trainer(
            model,
            torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay),
            train_loader,
            step,
            epochs=cfg.epochs,
            evaluate=lambda m: validate(m, val_loader, torch.device("cpu")),
            callbacks=[MLflowLogger(tr.run_id), *callbacks],
            monitor="val_top1",
            progress=False,
        )
        return trainer.fit()


def study_file(directory: Path, epochs: int) -> Path:
    study = {
        "entry_point": "tune_pruning",  # this module (its folder is put on sys.path below)
        "objective": {"metric": "val_top1", "direction": "maximize"},
        "pruner": {"type": "median", "n_startup_trials": 3, "n_warmup_steps": 2},
        "sampler": {"type": "random"},  # history-independent: both arms draw the same params
        "base": {"epochs": epochs},
        "search_space": {
            "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
            "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-1, "log": True},
        },
    }
    path = directory / "bench_pruning.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import optuna

    from projects.tune import run as tune
    from projects.tune.storage import open_storage

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="tune-bench-"))
    os.chdir(work)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    path = study_file(work, args.epochs)
    journal = str(work / "journal.log")
    results = {}
    for arm, pruner in (("median", "median"), ("no pruning", "none")):
        start = time.perf_counter()
        summary = tune.run(
            from_dict(
                tune.Config,
                {
                    "study": str(path),
                    "n_trials": args.trials,
                    "study_name": f"bench-{pruner}",
                    "pruner": pruner,
                    "seed": args.seed,
                    "register": False,
                    "storage": journal,
                },
            )
        )
        study = optuna.load_study(study_name=f"bench-{pruner}", storage=open_storage(journal))
        results[arm] = (summary, study, time.perf_counter() - start)

    (pruned, study_p, _), (full, study_f, _) = results["median"], results["no pruning"]
    same = [t.params for t in study_p.trials] == [t.params for t in study_f.trials]
    print(
        f"\nstudy: {args.trials} trials x {args.epochs} epochs, small CNN on synthetic, random sampler "
        f"seed {args.seed}; same params in both arms: {same}"
    )
    print(f"{'arm':<12} {'epochs':>7} {'pruned':>7} {'best val_top1':>14} {'wall s':>8}")
    for arm, (s, _, wall) in results.items():
        epochs, n_pruned = int(s["epochs_trained"]), int(s["trials_pruned"])
        print(f"{arm:<12} {epochs:>7} {n_pruned:>7} {s['val_top1']:>14.2f} {wall:>8.0f}")
    print(
        f"epochs with pruning / without: {pruned['epochs_trained'] / full['epochs_trained']:.0%}; "
        f"best value difference: {pruned['val_top1'] - full['val_top1']:+.2f} points"
    )
    print("\ntrial  lr        wd        final val_top1 (no pruning)  with median pruner")
    for tp, tf in zip(study_p.trials, study_f.trials, strict=True):
        outcome = (
            f"{tp.value:.1f}"
            if tp.value is not None and tp.state.name == "COMPLETE"
            else (f"pruned at epoch {max(tp.intermediate_values)}")
        )
        print(
            f"{tp.number:>5}  {tp.params['lr']:.1e}  {tp.params['weight_decay']:.1e}  "
            f"{tf.value:>27.1f}  {outcome}"
        )
    print(f"(artifacts in {work})")


if __name__ == "__main__":
    main()
