"""Which per-epoch monitor ranks SSL encoders as the offline linear probe does (not a test).

Part ``agreement``: SimCLR recipe variants x seeds are trained by the code of ``mlflow run . -e simclr``
(``pretrain.build`` + ``create_trainer``, no MLflow); at several epochs (and at random init) every
monitor candidate scores the encoder, computed from one set of frozen features:

- ``knn``: the shipped kNN monitor (``knn_k`` 20, temperature 0.07, bank = the run's ``monitor_bank``);
- ``knn200``: kNN with k=200, temperature 0.1 over every labelled pretraining image (InstDisc's protocol);
- ``probe``: the shipped probe monitor (logistic regression by L-BFGS on the bank, scored on the
  validation split);
- ``ridge``: closed-form ridge regression to one-hot labels on the same standardised features;
- ``probe_1k``, ``knn_1k``: the shipped monitors on a seeded, class-stratified 1,000 images of the bank
  (``monitor_bank=1000``: a cheaper pass, its features' cost counted in proportion).

The reference is the offline probe: scikit-learn's ``LogisticRegression`` on standardised features of every
labelled pretraining image, scored on the validation split (``probe_val``: what defaults are chosen on)
and, once, on the test split (``probe_test``: all labelled training images, as ``simclr_recipe.py``).
Kendall's tau between each candidate and each reference is printed, with each candidate's seconds per
epoch as a share of the training epoch.

Part ``peer``: our defaults vs lightly's CIFAR-10 recipe vs random init at each of ``--peer_epochs``,
probed on the test split with all labels, 10 % and 5 per class (the same probe for every encoder).

Part ``tune``: a small ``tune`` study of ``studies/simclr.yaml``'s search space on the same images, with the
median pruner; then every trial's last checkpoint is probed offline (validation and test). Printed: the
probe's rank of the trial the study picks, and its distance from the probe's best trial.

    python bench/monitor_agreement.py --data_dir ../shared/data/cifar10_subset --epochs 6 \\
        --eval_epochs 1 3 6 --seeds 0 1 --overrides '{"stem": "imagenet"}' \\
        --out bench/results/cpu-monitor-agreement.jsonl
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

from simclr_recipe import (  # noqa: E402
    emit,
    encoder_features,
    lightly_normalize,
    probe_accuracy,
    train_lightly,
    train_ours,
)

from projects.core.config import from_dict  # noqa: E402
from projects.core.data import load_split, stratified_index  # noqa: E402
from projects.core.datasets import get_dataset  # noqa: E402
from projects.core.evaluate import extract_features, knn_accuracy, logistic_probe_accuracy  # noqa: E402
from projects.core.loop import Callback, Trainer, resolve_device  # noqa: E402
from projects.core.models import create_model  # noqa: E402
from projects.core.trainer_factory import create_trainer  # noqa: E402
from projects.ssl.methods.simclr import Config, SimCLR  # noqa: E402
from projects.ssl.pretrain import build, ssl_step  # noqa: E402

# Recipes whose encoders differ in quality: overrides of simclr's defaults.
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "t02": {"temperature": 0.2},
    "no_warmup": {"warmup_fraction": 0.0},
    "cj05": {"color_jitter": 0.5},
    "head_none": {"head": "none"},
    "lightly_like": {
        "optimizer": "sgd",
        "lr": 0.12,
        "weight_decay": 5e-4,
        "warmup_fraction": 0.0,
        "color_jitter": 0.5,
        "head": "mlp_bn",
    },
}
CANDIDATES = ("knn", "knn200", "probe", "ridge", "probe_1k", "knn_1k")
SMALL_BANK = 1000


def ridge_accuracy(train_x, train_y, test_x, test_y, alpha: float = 1.0) -> float:
    """Closed-form ridge regression to one-hot labels on standardised features; top-1 (%)."""
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    x, q = (train_x - mean) / std, (test_x - mean) / std
    x = torch.cat([x, torch.ones(len(x), 1)], 1)
    q = torch.cat([q, torch.ones(len(q), 1)], 1)
    targets = torch.nn.functional.one_hot(train_y.long()).float()
    gram = x.T @ x + alpha * len(x) * torch.eye(x.shape[1])
    weights = torch.linalg.solve(gram, x.T @ targets)
    return 100.0 * float(((q @ weights).argmax(1) == test_y).float().mean())


def score_candidates(
    bank: tuple, pretrain: tuple, val: tuple, knn_k: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Each candidate's value and seconds (features already computed)."""
    keep = torch.from_numpy(stratified_index(bank[1].numpy(), SMALL_BANK / len(bank[1]), seed=1))
    small = (bank[0][keep], bank[1][keep])
    fns = {
        "knn": lambda: knn_accuracy(*bank, *val, k=knn_k),
        "knn200": lambda: knn_accuracy(*pretrain, *val, k=200, temperature=0.1),
        "probe": lambda: logistic_probe_accuracy(*bank, *val),
        "ridge": lambda: ridge_accuracy(*bank, *val),
        "probe_1k": lambda: logistic_probe_accuracy(*small, *val),
        "knn_1k": lambda: knn_accuracy(*small, *val, k=knn_k),
    }
    values, seconds = {}, {}
    for name, fn in fns.items():
        start = time.perf_counter()
        values[name] = fn()
        seconds[name] = time.perf_counter() - start
    return values, seconds


class Snapshot(Callback):
    """At the chosen epochs: every candidate and both offline probes of the current encoder."""

    def __init__(self, measure, epochs: set[int]):
        self.measure, self.epochs = measure, epochs

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if epoch in self.epochs:
            self.measure(trainer.model.encoder, epoch, logs.get("epoch_time_s"))
            trainer.model.train()


def agreement(args, device: torch.device, out: Path | None) -> list[dict[str, Any]]:
    full_train = load_split("cifar10", "train", args.data_dir, download=False)
    test = load_split("cifar10", "test", args.data_dir, download=False)
    spec = get_dataset("cifar10")
    rows = []
    for seed in args.seeds:
        for variant in args.variants:
            params = {
                "dataset": "cifar10",
                "data_dir": args.data_dir,
                "download": False,
                "epochs": args.epochs,
                "seed": seed,
                "register": False,
                "resume": False,
                "num_workers": 0,
                **args.overrides,
                **VARIANTS[variant],
            }
            cfg = from_dict(Config, params)
            setup = build(cfg, SimCLR, device)

            def measure(encoder, epoch, epoch_s, *, setup=setup, cfg=cfg, variant=variant, seed=seed):
                start = time.perf_counter()
                bank = extract_features(encoder, setup.monitor.bank, device)
                val = extract_features(encoder, setup.monitor.queries, device)
                monitor_features_s = time.perf_counter() - start
                feats = {
                    name: encoder_features(encoder, split, spec.mean, spec.std, device)
                    for name, split in (("pretrain", setup.pretrain), ("val", setup.val))
                }
                pretrain = (torch.from_numpy(feats["pretrain"]), torch.from_numpy(setup.pretrain.labels))
                values, seconds = score_candidates(bank, pretrain, val, cfg.knn_k)
                probe_val = probe_accuracy(
                    feats["pretrain"], setup.pretrain.labels, feats["val"], setup.val.labels
                )
                train_x = encoder_features(encoder, full_train, spec.mean, spec.std, device)
                test_x = encoder_features(encoder, test, spec.mean, spec.std, device)
                row = {
                    "part": "agreement",
                    "variant": variant,
                    "seed": seed,
                    "epoch": epoch,
                    **values,
                    "probe_val": probe_val,
                    "probe_test": probe_accuracy(train_x, full_train.labels, test_x, test.labels),
                    "seconds": seconds,
                    "monitor_features_s": monitor_features_s,
                    "bank_images": len(bank[1]),
                    "val_images": len(val[1]),
                    "epoch_time_s": epoch_s,
                    "overrides": args.overrides,
                }
                rows.append(row)
                emit(out, row)

            if variant == args.variants[0]:  # random init: the encoder before any step
                measure(setup.model.encoder, 0, None, variant="random")
                setup.model.train()
            trainer = create_trainer(
                cfg,
                setup.model,
                setup.train_loader,
                ssl_step,
                evaluate=None,
                monitor=None,
                device=device,
                callbacks=[Snapshot(measure, set(args.eval_epochs))],
                progress=False,
                batch_transform=setup.batch_transform,
            )
            trainer.fit()
    return rows


def kendall_tau(a: list[float], b: list[float]) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic)


def summarize_agreement(rows: list[dict[str, Any]]) -> str:
    rows = [r for r in rows if r.get("part") == "agreement"]
    trained = [r for r in rows if r["epoch"] > 0]
    lines = [f"{len(rows)} encoders ({len(trained)} trained checkpoints + random init)"]
    lines.append(
        f"{'candidate':10s} {'tau vs probe_val':>17s} {'tau vs probe_test':>18s} {'cost / epoch':>13s}"
    )
    epoch_s = np.mean([r["epoch_time_s"] for r in trained if r.get("epoch_time_s")])
    feature_s = np.mean([r["monitor_features_s"] for r in rows])
    bank, val = rows[0]["bank_images"], rows[0]["val_images"]
    for name in CANDIDATES:
        values = [r[name] for r in rows]
        share = (SMALL_BANK + val) / (bank + val) if name.endswith("_1k") else 1.0
        cost = (share * feature_s + np.mean([r["seconds"][name] for r in rows])) / epoch_s
        lines.append(
            f"{name:10s} {kendall_tau(values, [r['probe_val'] for r in rows]):17.2f} "
            f"{kendall_tau(values, [r['probe_test'] for r in rows]):18.2f} {100 * cost:12.1f}%"
        )
    lines.append(f"(epoch {epoch_s:.1f} s of training; monitor features {feature_s:.1f} s)")
    finals = [r for r in trained if r["epoch"] == max(x["epoch"] for x in trained)]
    lines.append("final checkpoints only:")
    for name in CANDIDATES:
        values = [r[name] for r in finals]
        lines.append(
            f"{name:10s} {kendall_tau(values, [r['probe_val'] for r in finals]):17.2f} "
            f"{kendall_tau(values, [r['probe_test'] for r in finals]):18.2f}"
        )
    return "\n".join(lines)


def peer(args, device: torch.device, out: Path | None) -> list[dict[str, Any]]:
    """Our defaults vs lightly vs random init at each budget, probed on the test split with 3 label sets."""
    from projects.core.data import split_train_val, stratified_fraction

    train = load_split("cifar10", "train", args.data_dir, download=False)
    test = load_split("cifar10", "test", args.data_dir, download=False)
    spec = get_dataset("cifar10")
    rows = []

    def label_sets(seed: int) -> dict[str, np.ndarray]:
        per_class = np.concatenate(
            [
                np.random.default_rng(seed).choice(np.flatnonzero(train.labels == c), 5, replace=False)
                for c in np.unique(train.labels)
            ]
        )
        return {
            "all": np.arange(len(train)),
            "10%": stratified_index(train.labels, 0.1, seed),
            "5/class": per_class,
        }

    def probes(encoder, mean, std, seed) -> dict[str, float]:
        train_x = encoder_features(encoder, train, mean, std, device)
        test_x = encoder_features(encoder, test, mean, std, device)
        return {
            name: probe_accuracy(train_x[idx], train.labels[idx], test_x, test.labels)
            for name, idx in label_sets(seed).items()
        }

    for seed in args.seeds:
        torch.manual_seed(seed)
        encoder = create_model("resnet18", num_classes=0, stem=args.overrides.get("stem", "cifar"))
        rows.append(
            {"part": "peer", "recipe": "random", "seed": seed, **probes(encoder, spec.mean, spec.std, seed)}
        )
        emit(out, rows[-1])
        for epochs in args.peer_epochs:
            base = {"dataset": "cifar10", "data_dir": args.data_dir, "download": False, "epochs": epochs}
            base |= {"num_workers": 0, "seed": seed, **args.overrides}
            encoder, seconds, _ = train_ours(base, device)
            row = {"part": "peer", "recipe": "ours", "epochs": epochs, "seed": seed, "train_s": seconds}
            rows.append({**row, **probes(encoder, spec.mean, spec.std, seed)})
            emit(out, rows[-1])
            pretrain, _ = split_train_val(train, 0.1, seed)  # the images ours pretrains on
            pretrain = stratified_fraction(pretrain, 1.0, seed)
            encoder, seconds = train_lightly(
                pretrain,
                epochs,
                Config.batch_size,
                seed,
                args.workers,
                device,
                stem=args.overrides.get("stem", "cifar"),
            )
            row = {"part": "peer", "recipe": "lightly", "epochs": epochs, "seed": seed, "train_s": seconds}
            rows.append({**row, **probes(encoder, *lightly_normalize(), seed)})
            emit(out, rows[-1])
    return rows


def summarize_peer(rows: list[dict[str, Any]]) -> str:
    rows = [r for r in rows if r.get("part") == "peer"]
    lines = [
        f"{'recipe':8s} {'epochs':>6s} {'seeds':>5s} "
        + " ".join(f"{k:>14s}" for k in ("all", "10%", "5/class"))
    ]
    keys = dict.fromkeys((r["recipe"], r.get("epochs", 0)) for r in rows)
    for recipe, epochs in keys:
        group = [r for r in rows if r["recipe"] == recipe and r.get("epochs", 0) == epochs]
        cells = [
            f"{np.mean([r[k] for r in group]):6.1f} +- {np.std([r[k] for r in group]):4.1f}"
            for k in ("all", "10%", "5/class")
        ]
        lines.append(f"{recipe:8s} {epochs:6d} {len(group):5d} " + " ".join(f"{c:>14s}" for c in cells))
    return "\n".join(lines)


def tune_study(args, device: torch.device, out: Path | None) -> list[dict[str, Any]]:
    """A pruned study as a user runs it (``projects.tune.run``), then the offline probe of every trial."""
    import os
    import tempfile

    import yaml

    from projects.core.data import split_train_val
    from projects.ssl.encoders import load_encoder
    from projects.tune import run as tune
    from projects.tune.storage import open_storage

    repo = Path(__file__).resolve().parents[1]
    data_dir = str(Path(args.data_dir).resolve())
    study = yaml.safe_load((repo / "studies" / "simclr.yaml").read_text())
    study["pruner"] = {
        "type": "median",
        "n_startup_trials": 3,
        "n_warmup_steps": max(1, args.tune_epochs // 3),
    }
    study["registry"]["name"] = "bench-simclr"
    study["base"] = {
        "dataset": "cifar10",
        "data_dir": data_dir,
        "download": False,
        "epochs": args.tune_epochs,
        "num_workers": 0,
        **args.overrides,
    }
    work = Path(tempfile.mkdtemp(prefix="monitor-tune-"))
    os.chdir(work)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    os.environ["PROJECTS_CHECKPOINT_DIR"] = str(work / "checkpoints")
    path = work / "simclr_bench.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    journal = str(work / "journal.log")
    values = {"study": str(path), "n_trials": args.tune_trials, "storage": journal, "study_name": "bench"}
    tune.run(from_dict(tune.Config, {**values, "seed": args.seeds[0], "register": False}))
    import optuna

    result = optuna.load_study(study_name="bench", storage=open_storage(journal))
    full_train = load_split("cifar10", "train", data_dir, download=False)
    test = load_split("cifar10", "test", data_dir, download=False)
    spec = get_dataset("cifar10")
    stem = args.overrides.get("stem", "cifar")
    rows = []
    for trial in result.trials:
        run_id = trial.user_attrs.get("mlflow_run_id")
        checkpoint = work / "checkpoints" / str(run_id) / "last.pt"
        if trial.state.name not in ("COMPLETE", "PRUNED") or not checkpoint.exists():
            continue
        encoder = load_encoder(str(checkpoint), "resnet18", stem)
        pretrain, val = split_train_val(full_train, 0.1, trial.params.get("seed", 0))
        feats = {
            name: encoder_features(encoder, split, spec.mean, spec.std, device)
            for name, split in (("pretrain", pretrain), ("val", val), ("train", full_train), ("test", test))
        }
        row = {
            "part": "tune",
            "trial": trial.number,
            "state": trial.state.name,
            "params": trial.params,
            "epochs": max(trial.intermediate_values, default=0),
            "probe_top1": trial.value
            if trial.value is not None
            else trial.intermediate_values[max(trial.intermediate_values)],
            "picked": trial.number == result.best_trial.number,
            "probe_val": probe_accuracy(feats["pretrain"], pretrain.labels, feats["val"], val.labels),
            "probe_test": probe_accuracy(feats["train"], full_train.labels, feats["test"], test.labels),
        }
        rows.append(row)
        emit(out, row)
    return rows


def summarize_tune(rows: list[dict[str, Any]]) -> str:
    rows = [r for r in rows if r.get("part") == "tune"]
    lines = [
        f"{'trial':>5s} {'state':9s} {'epochs':>6s} {'probe_top1 (monitor)':>21s} {'probe val':>10s} {'probe test':>11s}"
    ]
    for r in rows:
        mark = "  <- study's pick" if r["picked"] else ""
        lines.append(
            f"{r['trial']:5d} {r['state']:9s} {r['epochs']:6d} {r['probe_top1']:21.1f} {r['probe_val']:10.1f} "
            f"{r['probe_test']:11.1f}{mark}"
        )
    picked = next(r for r in rows if r["picked"])
    for ref in ("probe_val", "probe_test"):
        ranked = sorted(rows, key=lambda r: -r[ref])
        rank = ranked.index(picked) + 1
        gap = ranked[0][ref] - picked[ref]
        lines.append(
            f"offline {ref}: the study's pick ranks {rank} of {len(rows)}, {gap:.1f} points below the best"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--parts", nargs="+", default=["agreement", "peer", "tune"], choices=("agreement", "peer", "tune")
    )
    parser.add_argument("--data_dir", default="../shared/data/cifar10_subset")
    parser.add_argument("--epochs", type=int, default=6, help="training epochs of the agreement part")
    parser.add_argument("--eval_epochs", type=int, nargs="+", default=[1, 3, 6])
    parser.add_argument("--peer_epochs", type=int, nargs="+", default=[5, 15])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--overrides", type=json.loads, default={}, help="simclr params for every run (JSON)")
    parser.add_argument("--tune_trials", type=int, default=10)
    parser.add_argument("--tune_epochs", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2, help="lightly's DataLoader workers")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=None, help="append JSON lines here")
    parser.add_argument("--summarize", type=Path, default=None, help="only print the summary of these rows")
    args = parser.parse_args()
    if args.summarize:
        rows = [json.loads(line) for line in args.summarize.read_text().splitlines() if line.strip()]
    else:
        device = resolve_device(args.device)
        rows = []
        if "agreement" in args.parts:
            rows += agreement(args, device, args.out)
        if "peer" in args.parts:
            rows += peer(args, device, args.out)
        if "tune" in args.parts:
            rows += tune_study(args, device, args.out and args.out.resolve())
    if any(r.get("part") == "agreement" for r in rows):
        print(summarize_agreement(rows))
    if any(r.get("part") == "peer" for r in rows):
        print(summarize_peer(rows))
    if any(r.get("part") == "tune" for r in rows):
        print(summarize_tune(rows))


if __name__ == "__main__":
    main()
