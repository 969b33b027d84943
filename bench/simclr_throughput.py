"""SimCLR throughput, measured in one run (not a test):

1. compute-only images/s: the SimCLR model's forward + NT-Xent + backward + step on synthetic tensors;
2. training-loop images/s: the real pipeline (albumentations two views, DataLoader, Trainer), tracking off;
3. the same loop inside a tracked MLflow run, as the entry point runs it (curves every 10 steps and every
   epoch, last.pt/best.pt written and logged as artifacts every epoch); loops 2-3 alternate twice and the
   medians are compared, so slow drift of the machine does not land on one side. The time spent inside
   the tracking callbacks is also clocked directly: on a busy machine the wall-time difference of two
   runs is noisier than the cost itself;
4. a peer: lightly's SimCLR recipe (SimCLRTransform + NTXentLoss, same ResNet-18 and batch);
5. bf16 autocast on CPU vs fp32 (compute-only), and its accuracy effect: the same short supervised
   ResNet-18 run on ``synthetic`` in each precision (a few hundred SimCLR steps leave kNN accuracy too
   close to chance to compare precisions).

    python bench/simclr_throughput.py --batch_size 128 --steps 20 --epochs 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from projects.core.data import ArrayDataset, load_split
from projects.core.loop import Callback, Trainer, autocast, make_loader
from projects.core.models import create_model
from projects.core.optim import create_optimizer
from projects.core.transforms import ImageOnly, eval_transform
from projects.ssl.losses.ntxent import nt_xent
from projects.ssl.model import SimCLRModel
from projects.ssl.simclr import simclr_step
from projects.ssl.views import TwoViews, simclr_augmentation


def new_model() -> SimCLRModel:
    torch.manual_seed(0)
    return SimCLRModel(create_model("resnet18", stem="cifar"))


def compute_only(batch: int, steps: int, precision: str) -> float:
    model = new_model()
    opt = create_optimizer(model, "adamw", 1e-3, 1e-4)
    x = torch.randn(2 * batch, 3, 32, 32)
    device = torch.device("cpu")

    def step() -> None:
        with autocast(precision, device):
            z = model(x)
            loss = nt_xent(z[:batch], z[batch:], 0.5)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


class Clocked(Callback):
    """Forwards every hook to ``inner`` and adds up the seconds spent in each hook."""

    def __init__(self, inner: Callback):
        self.inner, self.seconds = inner, {}

    def _timed(self, hook: str, *args) -> None:
        start = time.perf_counter()
        getattr(self.inner, hook)(*args)
        self.seconds[hook] = self.seconds.get(hook, 0.0) + time.perf_counter() - start

    def on_fit_start(self, trainer) -> None:
        self._timed("on_fit_start", trainer)

    def on_step_end(self, trainer, logs) -> None:
        self._timed("on_step_end", trainer, logs)

    def on_epoch_end(self, trainer, epoch, logs) -> None:
        self._timed("on_epoch_end", trainer, epoch, logs)

    def on_fit_end(self, trainer) -> None:
        self._timed("on_fit_end", trainer)


def loop_images_per_sec(
    batch: int, steps: int, epochs: int, workers: int, tracked: bool
) -> tuple[float, float, float]:
    """images/s of ``Trainer.fit``, its wall seconds, and the seconds spent in the tracking callbacks'
    per-step hooks and in all their other hooks."""
    data = load_split("synthetic", "train")
    data = data.subset(np.arange(batch * steps))
    loader = make_loader(
        ArrayDataset(data, TwoViews(simclr_augmentation("synthetic", 32))), batch, True, workers, True
    )
    model = new_model()
    opt = create_optimizer(model, "adamw", 1e-3, 1e-4)
    import mlflow

    from projects.core.callbacks import Checkpointer, MLflowLogger

    # Both variants are timed the same way: wall time of Trainer.fit over the same batches.
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
        with mlflow.start_run() as run:
            callbacks = [Clocked(MLflowLogger(run.info.run_id)), Clocked(Checkpointer(f"{tmp}/ck"))]
            callbacks = callbacks if tracked else []
            trainer = Trainer(
                model,
                opt,
                loader,
                simclr_step(0.5),
                epochs=epochs,
                precision="fp32",
                progress=False,
                callbacks=callbacks,
            )
            start = time.perf_counter()
            trainer.fit()
            total = time.perf_counter() - start
        per_step = sum(c.seconds.get("on_step_end", 0.0) for c in callbacks)
        other = sum(sum(c.seconds.values()) for c in callbacks) - per_step
        return batch * steps * epochs / total, total, (per_step, other)


def lightly_images_per_sec(batch: int, steps: int, epochs: int, workers: int) -> float:
    from lightly.loss import NTXentLoss
    from lightly.transforms import SimCLRTransform
    from PIL import Image

    data = load_split("synthetic", "train").subset(np.arange(batch * steps))
    transform = SimCLRTransform(input_size=32, gaussian_blur=0.0)

    class Views(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(data)

        def __getitem__(self, i: int):
            return transform(Image.fromarray(data.images[i])), int(data.labels[i])

    loader = make_loader(Views(), batch, True, workers, True)
    model, criterion = new_model(), NTXentLoss(temperature=0.5)
    opt = create_optimizer(model, "adamw", 1e-3, 1e-4)
    model.train()
    start, seen = time.perf_counter(), 0
    for _ in range(epochs):
        for (v1, v2), _ in loader:
            z = model(torch.cat([v1, v2]))
            loss = criterion(z[: len(v1)], z[len(v1) :])
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(v1)
    return seen / (time.perf_counter() - start)


def supervised_top1(precision: str, batch: int, epochs: int, seed: int) -> float:
    """Test top-1 of ResNet-18 trained on 2,000 synthetic images in ``precision`` (same seed: same initial
    weights, batches and augmentations in both precisions)."""
    from projects.core.classification import classification_step
    from projects.core.evaluate import validate
    from projects.core.transforms import standard_train_transform

    train = load_split("synthetic", "train").subset(np.arange(2000))
    test = load_split("synthetic", "test")
    loader = make_loader(
        ArrayDataset(train, ImageOnly(standard_train_transform("synthetic", 32))), batch, True, 0, True, seed
    )
    torch.manual_seed(seed)
    model = create_model("resnet18", num_classes=10, stem="cifar")
    opt = create_optimizer(model, "adamw", 1e-3, 1e-4)
    step = classification_step(None, 0.0)
    Trainer(model, opt, loader, step, epochs=epochs, precision=precision, progress=False).fit()
    test_loader = make_loader(
        ArrayDataset(test, ImageOnly(eval_transform("synthetic", 32, 32))), 256, False, 0
    )
    with autocast(precision, torch.device("cpu")):
        return validate(model, test_loader, torch.device("cpu"))["val_top1"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per training-loop measurement")
    parser.add_argument("--num_workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--skip_accuracy", action="store_true", help="skip the bf16-vs-fp32 accuracy runs")
    parser.add_argument(
        "--accuracy_seeds", type=int, default=3, help="seeds of the bf16-vs-fp32 accuracy runs"
    )
    args = parser.parse_args()
    b, n, e, w = args.batch_size, args.steps, args.epochs, args.num_workers
    print(
        f"batch {b}, {n} steps x {e} epochs, {w} workers, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    compute = compute_only(b, n, "fp32")
    loops, clocked = {False: [], True: []}, []
    for tracked in (False, True, False, True):
        rate, wall, (per_step, other) = loop_images_per_sec(b, n, e, w, tracked)
        loops[tracked].append(round(rate, 2))
        if tracked:
            clocked.append((wall, per_step, other))
    loop, tracked = float(np.median(loops[False])), float(np.median(loops[True]))
    wall, per_step, other = np.sum(clocked, axis=0)
    epochs_run = len(clocked) * e
    peer = lightly_images_per_sec(b, n, e, w)
    bf16 = compute_only(b, n, "bf16")
    print(f"compute-only fp32          {compute:8.1f} img/s")
    print(
        f"training loop (untracked)  {loop:8.1f} img/s   loop/compute = {loop / compute:.3f}   runs {loops[False]}"
    )
    print(f"training loop (MLflow on)  {tracked:8.1f} img/s   runs {loops[True]}")
    print(
        f"MLflow tracking cost       {100 * (1 - tracked / loop):8.2f} % of wall time (difference of medians)"
    )
    step_s, epoch_s = per_step / (epochs_run * n), other / epochs_run
    print(
        f"inside tracking callbacks  {100 * (per_step + other) / wall:8.2f} % of tracked wall time"
        f" ({1000 * step_s:.1f} ms per step, {epoch_s:.2f} s per epoch incl. checkpoints)"
    )
    # A real epoch is far longer than the bench's: the per-epoch checkpoint cost is spread over it.
    cifar_steps = 50_000 // b
    cifar_epoch = cifar_steps * b / loop
    cost = cifar_steps * step_s + epoch_s
    print(
        f"  -> on a CIFAR-10 epoch ({cifar_steps} steps, {cifar_epoch:.0f} s here): {100 * cost / cifar_epoch:.2f} %"
    )
    print(f"lightly SimCLR recipe      {peer:8.1f} img/s   ours/lightly = {loop / peer:.3f}")
    print(f"compute-only bf16 autocast {bf16:8.1f} img/s   bf16/fp32 = {bf16 / compute:.3f}")
    if not args.skip_accuracy:
        # One short run's accuracy moves by several points with the seed: compare over seeds.
        seeds = range(args.accuracy_seeds)
        acc = {p: [round(supervised_top1(p, b, 2, seed), 1) for seed in seeds] for p in ("fp32", "bf16")}
        diff = np.subtract(acc["bf16"], acc["fp32"])
        print(
            f"supervised ResNet-18, 2 epochs on 2,000 synthetic images, seeds {list(seeds)}: test top-1"
            f" fp32 {acc['fp32']}  bf16 {acc['bf16']}  bf16 - fp32 = {diff.mean():+.1f} (per seed {np.round(diff, 1).tolist()})"
        )


if __name__ == "__main__":
    main()
