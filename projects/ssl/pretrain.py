"""SSL pretraining of any method (:mod:`projects.ssl.methods`): data, views, encoder, quality monitor, and
the tracked run around them.

For each batch of N images: two augmented views (2N), the method's loss, one optimiser step, then the
momentum update of methods that have one. After each epoch the monitor (:mod:`projects.ssl.monitors`;
by default a logistic-regression probe fitted on the frozen features of labelled training images and
scored on a held-out validation split, never pretrained on) gives ``probe_top1``, the value that
``best.pt``, pruning and the registry's ``champion`` follow. The encoder is registered as
``<method>-<arch>``. :func:`build` is the recipe without tracking (benchmarks train it bare);
:func:`pretrain` runs it inside an MLflow run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import mlflow
import numpy as np
import torch
from torch import nn

from projects.core import distributed, pipeline
from projects.core.batch_augment import Normalize, ViewAugment
from projects.core.config import check
from projects.core.data import ImageArrays, load_split, split_train_val, stratified_fraction
from projects.core.datasets import get_dataset
from projects.core.fit import fit_in_run
from projects.core.loop import BatchTransform, Callback, resolve_device
from projects.core.models import create_model
from projects.core.registry import log_and_register
from projects.core.tracking import log_dataset, tracked_run
from projects.core.transforms import ImageOnly, eval_transform
from projects.ssl.methods.base import MONITOR_OFF, MomentumMethod, MomentumUpdate, SSLConfig, SSLMethod
from projects.ssl.monitors import monitor_for_metric
from projects.ssl.monitors.base import Monitor
from projects.ssl.views import BatchViews, TwoViews, view_augmentation


def ssl_step(model: SSLMethod, batch: Any) -> tuple[torch.Tensor, int]:
    (view1, view2), _ = batch
    return model(view1, view2), len(view1)


@dataclass(frozen=True)
class PretrainSetup:
    """Everything an SSL run trains and monitors; :func:`pretrain` adds tracking around it."""

    model: SSLMethod
    pretrain: ImageArrays
    val: ImageArrays | None  # None when the data has no labels (no monitor)
    train_loader: Iterable
    batch_transform: BatchTransform | None
    monitor: Monitor | None
    image_size: int
    callbacks: list[Callback] = field(default_factory=list)

    def trainer_args(self) -> dict[str, Any]:
        """What ``create_trainer`` / ``fit_in_run`` take from the setup, by their parameter names."""
        return {
            "train_loader": self.train_loader,
            "step_fn": ssl_step,
            "evaluate": self.monitor,
            "monitor": self.monitor.metric if self.monitor else None,
            "batch_transform": self.batch_transform,
        }


def create_encoder(cfg: SSLConfig) -> nn.Module:
    return create_model(
        cfg.arch, num_classes=0, stem=cfg.stem, image_size=cfg.resolution, patch_size=cfg.patch_size
    )


def build(cfg: SSLConfig, method: type[SSLMethod], device: torch.device) -> PretrainSetup:
    """Data, views, method and monitor for ``cfg``; seeds torch with ``cfg.seed`` first.

    Labelled data is split into pretraining images and the monitor's queries (held out from
    pretraining); the monitor's bank is drawn from the pretraining images' labelled part. Unlabelled data
    (a flat image folder) is pretrained on whole, and only with ``eval_metric=none``.
    """
    torch.manual_seed(cfg.seed)
    size = cfg.resolution
    spec = get_dataset(cfg.dataset)
    images = load_split(cfg.dataset, "train", cfg.data_dir, cfg.download, image_size=cfg.image_size)
    labelled = bool((images.labels >= 0).all())
    check(
        labelled or cfg.eval_metric == MONITOR_OFF,
        f"eval_metric={cfg.eval_metric} needs labelled images, but {cfg.dataset} at {cfg.data_dir} has none: "
        "pass eval_metric=none (champion then follows train_loss)",
    )
    if labelled:
        train, val = split_train_val(images, cfg.val_fraction, cfg.seed)
    else:
        train, val = images, None
    pretrain = stratified_fraction(train, cfg.fraction, cfg.seed)
    if cfg.split == "train+unlabeled":
        unlabeled = load_split(
            cfg.dataset, "unlabeled", cfg.data_dir, cfg.download, image_size=cfg.image_size
        )
        pretrain = pretrain.concat(stratified_fraction(unlabeled, cfg.fraction, cfg.seed))
    check(
        len(pretrain) >= cfg.batch_size,
        f"batch_size={cfg.batch_size} exceeds the {len(pretrain)} pretraining images",
    )

    first, second = cfg.views()
    normalize = Normalize(spec.mean, spec.std)
    feed = pipeline.feed_options(cfg, device)
    per_image = TwoViews(
        view_augmentation(cfg.dataset, size, first),
        None if second == first else view_augmentation(cfg.dataset, size, second),
    )
    # drop_last: contrastive difficulty depends on the batch size; keep every step's negatives count equal.
    train_loader = pipeline.train_loader(
        pretrain, **feed, per_image=per_image, batch_size=cfg.batch_size, seed=cfg.seed, drop_last=True
    )
    batch_transform = None
    if cfg.augment == "batched":
        seed = distributed.rank_seed(cfg.seed)  # each rank draws its own views
        augments = [ViewAugment(normalize, size, first, seed=seed, device=device)]
        if second != first:
            augments.append(ViewAugment(normalize, size, second, seed=seed + 1, device=device))
        batch_transform = BatchViews(*augments)

    monitor = None
    if val is not None and cfg.eval_metric != MONITOR_OFF:
        bank = stratified_fraction(train, min(1.0, cfg.monitor_bank / len(train)), cfg.seed + 1)
        plain = ImageOnly(eval_transform(cfg.dataset, size, images.images.shape[1]))
        eval_normalize = Normalize(spec.mean, spec.std, size=size)
        bank_loader = pipeline.eval_loader(bank, **feed, per_image=plain, normalize=eval_normalize)
        query_loader = pipeline.eval_loader(val, **feed, per_image=plain, normalize=eval_normalize)
        monitor = monitor_for_metric(cfg.eval_metric)(bank_loader, query_loader, device, knn_k=cfg.knn_k)

    model = method.from_config(cfg, create_encoder(cfg))
    return PretrainSetup(
        model=model,
        pretrain=pretrain,
        val=val,
        train_loader=train_loader,
        batch_transform=batch_transform,
        monitor=monitor,
        image_size=size,
        callbacks=[MomentumUpdate(model)] if isinstance(model, MomentumMethod) else [],
    )


def pretrain(
    cfg: SSLConfig,
    method: type[SSLMethod],
    *,
    callbacks: Sequence[Callback] = (),
    nested: bool = False,
) -> dict[str, Any]:
    """Pretrain with ``method`` inside a tracked run; log curves, checkpoints, data; register the encoder."""
    device = resolve_device(cfg.device)
    setup = build(cfg, method, device)
    pretrain_set, val, size = setup.pretrain, setup.val, setup.image_size
    with tracked_run(cfg, method.name, nested=nested, device=device) as tr:
        if tr.main:
            log_dataset(pretrain_set.images, pretrain_set.labels, pretrain_set.name, cfg.data_dir, "train")
            if val is not None:
                log_dataset(val.images, val.labels, f"{cfg.dataset}-val", cfg.data_dir, "validation")
            if setup.monitor is None:
                mlflow.set_tag("monitor", "off: champion follows train_loss")
        trainer, logs = fit_in_run(
            tr,
            cfg,
            setup.model,
            **setup.trainer_args(),
            device=device,
            callbacks=[*setup.callbacks, *callbacks],
        )
        final = {**logs, "pretrain_images": len(pretrain_set), "run_id": tr.run_id}
        if trainer.best is not None:
            final[f"best_{trainer.monitor}"] = trainer.best
        if not tr.main:
            return final
        mlflow.log_metric("pretrain_images", len(pretrain_set))
        if trainer.best is not None:
            mlflow.log_metric(f"best_{trainer.monitor}", trainer.best)
        if cfg.register:
            example = np.zeros((1, 3, size, size), dtype=np.float32)
            # Without a monitor, champion follows the final training loss (lower is better).
            metric = setup.monitor.metric if setup.monitor else "train_loss"
            log_and_register(
                setup.model.encoder,
                f"{method.name}-{cfg.arch}",
                metric,
                logs[metric],
                example,
                greater_is_better=setup.monitor is not None,
            )
        return final
