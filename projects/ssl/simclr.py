"""``simclr``: SimCLR pretraining (:mod:`projects.ssl.simclr_recipe`) inside a tracked MLflow run.

Logs the curves (``knn_top1`` per epoch is the value to watch and to prune on), checkpoints and data
fingerprints; the encoder f (without g) is registered as ``simclr-<arch>``, ``champion`` follows
``knn_top1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mlflow
import numpy as np

from projects.core.entry import main
from projects.core.fit import fit_in_run
from projects.core.loop import Callback, resolve_device
from projects.core.registry import log_and_register
from projects.core.tracking import log_dataset, tracked_run
from projects.ssl.simclr_recipe import Config, build

__all__ = ["Config", "run"]


def run(cfg: Config, *, callbacks: Sequence[Callback] = (), nested: bool = False) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    setup = build(cfg, device)
    pretrain, val, size = setup.pretrain, setup.val, setup.image_size
    run_name = f"simclr-{cfg.arch}-{cfg.dataset}-{cfg.fraction:g}"
    with tracked_run(cfg, "simclr", run_name=run_name, nested=nested, device=device) as tr:
        log_dataset(pretrain.images, pretrain.labels, pretrain.name, cfg.data_dir, "train")
        log_dataset(val.images, val.labels, f"{cfg.dataset}-val", cfg.data_dir, "validation")
        trainer, logs = fit_in_run(
            tr, cfg, setup.model, **setup.trainer_args(), device=device, callbacks=callbacks
        )
        final = {
            **logs,
            "best_knn_top1": trainer.best or 0.0,
            "pretrain_images": len(pretrain),
            "run_id": tr.run_id,
        }
        mlflow.log_metrics({k: final[k] for k in ("best_knn_top1", "pretrain_images")})
        if cfg.register:
            example = np.zeros((1, 3, size, size), dtype=np.float32)
            log_and_register(setup.model.encoder, f"simclr-{cfg.arch}", "knn_top1", logs["knn_top1"], example)
        return final


if __name__ == "__main__":
    main(Config, run)
