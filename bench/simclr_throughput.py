"""SimCLR throughput on this machine's CPU, measured side by side in one run (not a test):

1. augmentation alone, views/s on one core: the batched on-device augmentation vs albumentations;
2. compute-only images/s: the model step on ready tensors, in the precision ``auto`` picks here;
3. the training loop with our defaults (``pipeline=device augment=batched``), untracked and inside a
   tracked MLflow run as the entry point runs it (the time inside the tracking callbacks clocked
   directly), and with ``augment=albumentations`` in DataLoader workers;
4. a peer: lightly's recipe (SimCLRTransform on PIL images in workers + NTXentLoss, fp32), same
   ResNet-18 and batch.

    python bench/simclr_throughput.py --batch_size 128 --steps 10 --epochs 2
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from projects.core.batch_augment import Normalize, ViewAugment, ViewParams  # noqa: E402
from projects.core.config import from_dict  # noqa: E402
from projects.core.data import load_split  # noqa: E402
from projects.core.datasets import get_dataset  # noqa: E402
from projects.core.loop import Callback, autocast, resolve_precision  # noqa: E402
from projects.core.models import create_model  # noqa: E402
from projects.core.optim import create_optimizer  # noqa: E402
from projects.core.trainer_factory import create_trainer  # noqa: E402
from projects.ssl.methods.simclr import Config, SimCLR  # noqa: E402
from projects.ssl.pretrain import build, ssl_step  # noqa: E402
from projects.ssl.views import view_augmentation  # noqa: E402

DEVICE = torch.device("cpu")


def views_per_sec_one_core(batch: int, repeats: int = 5) -> tuple[float, float]:
    """Augmented views/s of one core: batched (one 512-image batch op) vs albumentations (per image)."""
    data = load_split("synthetic", "train")
    images = data.images[:batch]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        spec = get_dataset("synthetic")
        batched = ViewAugment(Normalize(spec.mean, spec.std), 32)
        x = torch.tensor(images).permute(0, 3, 1, 2)  # a copy: the split is read-only
        batched(x)
        start = time.perf_counter()
        for _ in range(repeats):
            batched(x)
        ours = batch * repeats / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    reference = view_augmentation("synthetic", 32, ViewParams.simclr())
    start = time.perf_counter()
    for _ in range(repeats):
        for image in images:
            reference(image=image)
    return ours, batch * repeats / (time.perf_counter() - start)


def config(batch: int, steps: int, epochs: int, workers: int, **extra) -> Config:
    # fraction chosen so that the pretraining split holds exactly steps x batch images (+ < 1 batch)
    fraction = min(1.0, (steps * batch + batch // 2) / 4500)
    values = {"dataset": "synthetic", "batch_size": batch, "epochs": epochs, "num_workers": workers}
    return from_dict(Config, {**values, "fraction": fraction, "warmup_fraction": 0, **extra})


def compute_only(batch: int, steps: int, precision: str) -> float:
    torch.manual_seed(0)
    model = SimCLR(create_model("resnet18", num_classes=0, stem="cifar"), from_dict(Config, {}))
    opt = create_optimizer(model, "adamw", 1e-3, 1e-4)
    x = torch.randn(2 * batch, 3, 32, 32)

    def step() -> None:
        with autocast(precision, DEVICE):
            loss = model(x[:batch], x[batch:])
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


class Clocked(Callback):
    """Forwards every hook to ``inner`` and adds up the seconds spent in it."""

    def __init__(self, inner: Callback):
        self.inner, self.seconds = inner, 0.0

    def _timed(self, hook: str, *args) -> None:
        start = time.perf_counter()
        getattr(self.inner, hook)(*args)
        self.seconds += time.perf_counter() - start

    def on_fit_start(self, trainer) -> None:
        self._timed("on_fit_start", trainer)

    def on_step_end(self, trainer, logs) -> None:
        self._timed("on_step_end", trainer, logs)

    def on_epoch_end(self, trainer, epoch, logs) -> None:
        self._timed("on_epoch_end", trainer, epoch, logs)

    def on_fit_end(self, trainer) -> None:
        self._timed("on_fit_end", trainer)


def loop_images_per_sec(cfg: Config, tracked: bool) -> tuple[float, float, float]:
    """images/s of ``Trainer.fit`` (no evaluation), its wall seconds, seconds inside tracking callbacks."""
    setup = build(cfg, SimCLR, DEVICE)
    with tempfile.TemporaryDirectory() as tmp:
        import mlflow

        from projects.core.callbacks import Checkpointer, MLflowLogger

        mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
        with mlflow.start_run() as run:
            callbacks = [Clocked(MLflowLogger(run.info.run_id)), Clocked(Checkpointer(f"{tmp}/ck"))]
            trainer = create_trainer(
                cfg,
                setup.model,
                setup.train_loader,
                ssl_step,
                evaluate=None,
                monitor=None,
                device=DEVICE,
                callbacks=callbacks if tracked else [],
                progress=False,
                batch_transform=setup.batch_transform,
            )
            start = time.perf_counter()
            trainer.fit()
            wall = time.perf_counter() - start
    images = len(setup.train_loader) * cfg.batch_size * cfg.epochs
    inside = sum(c.seconds for c in callbacks) if tracked else 0.0
    return images / wall, wall, inside


def lightly_images_per_sec(cfg: Config) -> float:
    """lightly's recipe on the same images: PIL transforms in workers, fp32, SGD (bench/simclr_recipe.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from simclr_recipe import train_lightly

    setup = build(cfg, SimCLR, DEVICE)
    _, seconds = train_lightly(setup.pretrain, cfg.epochs, cfg.batch_size, cfg.seed, cfg.num_workers, DEVICE)
    return len(setup.train_loader) * cfg.batch_size * cfg.epochs / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per training-loop measurement")
    parser.add_argument("--num_workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    b, n, e, w = args.batch_size, args.steps, args.epochs, args.num_workers
    print(
        f"batch {b}, {n} steps x {e} epochs, {w} workers, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    ours_views, album_views = views_per_sec_one_core(512)
    print(
        f"augmentation, one core     batched {ours_views:8.0f} views/s   albumentations {album_views:8.0f} views/s"
        f"   ratio {ours_views / album_views:.2f}"
    )
    defaults = config(b, n, e, w)
    precision = resolve_precision(defaults.precision, DEVICE)
    compute = compute_only(b, n, precision)
    untracked, tracked, clocked = [], [], []
    for _ in range(2):  # alternate, so slow drift of the machine does not land on one side
        untracked.append(loop_images_per_sec(defaults, tracked=False)[0])
        rate, wall, inside = loop_images_per_sec(defaults, tracked=True)
        tracked.append(rate)
        clocked.append(inside / wall)
    album = loop_images_per_sec(config(b, n, e, w, augment="albumentations", pipeline="workers"), False)[0]
    peer = lightly_images_per_sec(defaults)
    loop = float(np.median(untracked))
    print(f"precision auto -> {precision}")
    print(f"compute-only               {compute:8.1f} img/s")
    print(
        f"loop, defaults (device)    {loop:8.1f} img/s   loop/compute {loop / compute:.3f}   runs {np.round(untracked, 1).tolist()}"
    )
    print(
        f"loop, defaults, MLflow on  {np.median(tracked):8.1f} img/s   inside tracking callbacks {100 * np.mean(clocked):.2f} % of wall time"
    )
    print(f"loop, albumentations       {album:8.1f} img/s   ({w} workers)")
    print(f"lightly's recipe           {peer:8.1f} img/s   ours/lightly {loop / peer:.3f}")


if __name__ == "__main__":
    main()
