"""Training-loop images/s vs compute-only images/s for the ``classify`` models (not a test).

The loop number is the real pipeline (albumentations CIFAR augmentation, DataLoader, CutMix, timm
optimiser + schedule, ``Trainer.train_one_epoch``); the compute number is forward + backward + step on a
fixed synthetic tensor of the same batch, same model. Their ratio is the share of compute the loop keeps.

    .venv/bin/python bench/classify_throughput.py --models resnet18 vit --batch_size 64 --steps 4
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim import Optimizer

from projects.classify.train import Config
from projects.core.classification import classification_step, create_mixup
from projects.core.data import NUM_CLASSES, ArrayDataset, load_split
from projects.core.loop import Trainer, make_loader, resolve_device
from projects.core.models import create_model
from projects.core.optim import create_optimizer, create_scheduler
from projects.core.transforms import ImageOnly, standard_train_transform


def compute_only(
    model: torch.nn.Module, optimizer, batch: int, steps: int, num_classes: int, device
) -> float:
    """Images/s of forward + backward + optimiser step on one fixed tensor (no data, no mixing)."""
    images = torch.randn(batch, 3, 32, 32, device=device)
    labels = torch.randint(0, num_classes, (batch,), device=device)
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def training_loop(
    cfg: Config, model: torch.nn.Module, optimizer: Optimizer, steps: int, device: torch.device
) -> float:
    """Images/s that ``Trainer.train_one_epoch`` reports over an epoch of exactly ``steps`` batches."""
    data = load_split(cfg.dataset, "train", cfg.data_dir, download=False)
    data = data.subset(np.arange(steps * cfg.batch_size))  # exactly ``steps`` full batches
    mixup = create_mixup(cfg, NUM_CLASSES[cfg.dataset])
    loader = make_loader(
        ArrayDataset(data, ImageOnly(standard_train_transform(cfg.dataset, 32))),
        cfg.batch_size,
        True,
        cfg.num_workers,
        drop_last=True,
        seed=cfg.seed,
    )
    trainer = Trainer(
        model,
        optimizer,
        loader,
        classification_step(mixup, cfg.label_smoothing),
        epochs=1,
        scheduler=create_scheduler(optimizer, 1, len(loader), 0.0),
        device=device,
        progress=False,
    )
    return trainer.train_one_epoch()["images_per_sec"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "vit"])
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per measurement")
    parser.add_argument("--num_workers", type=int, default=0)
    parser.add_argument(
        "--dataset", default="synthetic", help="synthetic needs no files; cifar100 needs data/"
    )
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    cfg = Config(dataset=args.dataset, batch_size=args.batch_size, num_workers=args.num_workers, seed=0)
    device = resolve_device(args.device)
    num_classes = NUM_CLASSES[cfg.dataset]
    print(
        f"device={device} threads={torch.get_num_threads()} batch={cfg.batch_size} steps={args.steps} "
        f"cutmix_prob={cfg.cutmix_prob} num_workers={cfg.num_workers}"
    )
    print(f"{'model':<10} {'loop img/s':>11} {'compute img/s':>14} {'loop/compute':>13}")
    for name in args.models:
        torch.manual_seed(0)
        model = create_model(name, num_classes=num_classes, **cfg.model_kwargs(name)).to(device)
        optimizer = create_optimizer(model, cfg.optimizer, cfg.lr, cfg.weight_decay)
        compute_only(model, optimizer, cfg.batch_size, 1, num_classes, device)  # warm-up: kernels, allocator
        compute = compute_only(model, optimizer, cfg.batch_size, args.steps, num_classes, device)
        loop = training_loop(cfg, model, optimizer, args.steps, device)
        print(f"{name:<10} {loop:>11.1f} {compute:>14.1f} {loop / compute:>13.2f}")


if __name__ == "__main__":
    main()
