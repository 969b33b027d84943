"""Parameters every training entry point shares; studies subclass and override defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from projects.core import distributed
from projects.core.config import check, check_positive, param, validate_choices
from projects.core.datasets import dataset_names
from projects.core.loop import DEVICES, PRECISIONS, resolve_device
from projects.core.optim import OPTIMIZERS
from projects.core.pipeline import AUGMENTS, PIPELINES

COMPILE_CHOICES = ("auto", "true", "false")


@dataclass
class TrainConfig:
    dataset: str = param("cifar100", "dataset to train on", dataset_names())
    data_dir: str = param(
        "data", "folder holding (or receiving) the torchvision dataset files; dataset=folder: your images"
    )
    download: bool = param(True, "download the dataset into data_dir when it is missing")
    epochs: int = param(100, "training epochs")
    batch_size: int = param(256, "images per step")
    optimizer: str = param("adamw", "optimiser (timm's factory)", OPTIMIZERS)
    lr: float = param(1e-3, "peak learning rate (after warmup)")
    weight_decay: float = param(0.05, "decoupled weight decay (AdamW) or L2 (SGD/LARS)")
    momentum: float = param(0.9, "momentum for sgd/lars")
    warmup_fraction: float = param(0.05, "share of the run's steps in linear warmup before cosine decay")
    seed: int = param(0, "random seed (data subset, init, shuffling)")
    device: str = param("auto", "auto picks cuda when available", DEVICES)
    precision: str = param(
        "auto",
        "auto = bf16 autocast where the GPU/CPU has bf16 kernels, fp16 + grad scaler on older GPUs, else fp32",
        PRECISIONS,
    )
    compile: str = param(
        "false",
        "torch.compile the model (auto = on CUDA only); off by default: on an H200 it made a SimCLR epoch 8% "
        "faster and cost 21 s to compile",
        COMPILE_CHOICES,
    )
    pipeline: str = param(
        "auto",
        "device: the split as one uint8 tensor on the training device; workers: DataLoader workers; "
        "auto: device where it fits",
        PIPELINES,
    )
    augment: str = param(
        "batched",
        "batched: per-sample random augmentation of whole batches on the device; "
        "albumentations: per image in DataLoader workers (the reference)",
        AUGMENTS,
    )
    num_workers: int = param(2, "DataLoader worker processes (pipeline=workers and evaluation)")
    resume: bool = param(True, "continue an interrupted run with the same parameters")
    register: bool = param(True, "log the final model and register it in the MLflow model registry")

    def __post_init__(self) -> None:
        validate_choices(self)
        check_positive(self, "epochs", "batch_size", "lr")
        check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        check(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")
        check(0 <= self.warmup_fraction < 1, f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        check(self.num_workers >= 0, f"num_workers must be >= 0, got {self.num_workers}")
        check(
            self.device != "cuda" or torch.cuda.is_available(),
            "device=cuda but no CUDA GPU is visible to torch; use device=auto or cpu",
        )
        check(
            not (self.pipeline == "device" and self.augment == "albumentations"),
            "augment=albumentations runs per image in DataLoader workers; use pipeline=workers or auto",
        )


@dataclass
class DistributedParams:
    """Mixin of the entry points that train data-parallel under ``torchrun`` (listed first in the bases)."""

    nproc_per_node: int = param(
        1,
        "training processes on this machine (DDP via torchrun: one per GPU, or CPU processes with gloo); "
        "batch_size is per process",
    )
    sync_bn: bool = param(False, "SyncBatchNorm: batch statistics over all processes (CUDA only)")

    def __post_init__(self) -> None:
        super().__post_init__()  # type: ignore[misc]
        check(self.nproc_per_node >= 1, f"nproc_per_node must be >= 1, got {self.nproc_per_node}")
        cuda = resolve_device(self.device).type == "cuda"
        available = torch.cuda.device_count() if cuda else os.cpu_count() or 1
        what = "CUDA GPUs" if cuda else "CPU cores"
        check(
            self.nproc_per_node <= available,
            f"nproc_per_node={self.nproc_per_node} but this machine has {available} {what}",
        )
        check(not self.sync_bn or cuda, "sync_bn=true needs CUDA (SyncBatchNorm has no CPU kernels)")
        launched = distributed.local_world_size() if distributed.launched() else None
        check(
            launched is None or self.nproc_per_node in (1, launched),
            f"nproc_per_node={self.nproc_per_node} but torchrun started {launched} processes on this machine",
        )
