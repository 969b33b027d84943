"""Supervised image classification (:mod:`projects.core.classifier_recipe`) inside a tracked MLflow run:
used by ``classify``, ``supervised`` and ``finetune``. Final test top-1/top-5, checkpoints, registry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import mlflow
import numpy as np
import torch
from torch import nn

from projects.core.classifier_recipe import (
    ClassifierBatch,
    ClassifierConfig,
    NamedModelConfig,
    build_data,
    classification_step,
    create_mixup,
)
from projects.core.data import num_classes
from projects.core.evaluate import validate
from projects.core.fit import fit_in_run
from projects.core.loop import Callback, resolve_device
from projects.core.models import create_model
from projects.core.registry import log_and_register
from projects.core.tracking import log_dataset, tracked_run

__all__ = [
    "ClassifierBatch",
    "ClassifierConfig",
    "NamedModelConfig",
    "classification_step",
    "create_mixup",
    "fit_classifier",
    "train_named_model",
]


def fit_classifier(
    cfg: ClassifierConfig,
    build_model: Callable[[int], nn.Module],
    *,
    entry_point: str,
    registered_name: str,
    callbacks: Sequence[Callback] = (),
    nested: bool = False,
    tags: dict[str, str] | None = None,
) -> dict[str, float]:
    """Train ``build_model(number of classes)`` on ``cfg.dataset`` in a tracked run; returns the final metrics.

    The model is built once the data is loaded, since a ``folder`` dataset's classes are its class folders.
    """
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    data = build_data(cfg, device)
    model = build_model(num_classes(data.train))
    train, val, test, val_loader = data.train, data.val, data.test, data.val_loader
    size = cfg.resolution
    with tracked_run(cfg, entry_point, nested=nested, tags=tags, device=device) as tr:
        if tr.main:
            log_dataset(train.images, train.labels, train.name, cfg.data_dir, "train")
            log_dataset(val.images, val.labels, val.name, cfg.data_dir, "validation")
            log_dataset(test.images, test.labels, f"{cfg.dataset}-test", cfg.data_dir, "test")
        trainer, logs = fit_in_run(
            tr,
            cfg,
            model,
            data.train_loader,
            classification_step(cfg.label_smoothing),
            evaluate=lambda m: validate(m, val_loader, device),
            monitor="val_top1",
            device=device,
            callbacks=callbacks,
            batch_transform=data.batch_transform,
        )
        final = {
            **logs,
            **validate(model, data.test_loader, device, prefix="test"),
            "best_val_top1": trainer.best or 0.0,
        }
        if not tr.main:
            return final
        mlflow.log_metrics({k: final[k] for k in ("test_top1", "test_top5", "test_loss", "best_val_top1")})
        if cfg.register:
            example = np.zeros((1, 3, size, size), dtype=np.float32)
            log_and_register(model, registered_name, "test_top1", final["test_top1"], example)
        return final


def train_named_model(
    cfg: NamedModelConfig,
    *,
    entry_point: str,
    callbacks: Sequence[Callback] = (),
    nested: bool = False,
    model_kwargs: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Build ``cfg.model`` for ``cfg.dataset`` and train it; registered as ``<entry_point>-<model>``.

    ``model_kwargs`` go to ``create_model`` on top of the defaults (e.g. a ViT's ``patch_size``).
    """
    kwargs = {"stem": cfg.stem} if cfg.model.startswith("resnet") else {"image_size": cfg.resolution}
    return fit_classifier(
        cfg,
        lambda classes: create_model(cfg.model, num_classes=classes, **kwargs, **(model_kwargs or {})),
        entry_point=entry_point,
        registered_name=f"{entry_point}-{cfg.model}",
        callbacks=callbacks,
        nested=nested,
    )
