"""Every image entry point, end to end (its tracked ``run``, in-process: the ``mlflow run`` path of each
is tested in its study's suite), with each input pipeline: batched augmentation on the device in bf16, and
albumentations in a DataLoader worker in the default precision."""

from __future__ import annotations

import importlib
import math

import mlflow
import pytest
import torch

from projects.core.config import from_dict
from projects.core.loop import resolve_precision

TINY = {"dataset": "synthetic", "val_fraction": "0.02", "epochs": "1", "batch_size": "8"}
LABELLED = {**TINY, "label_fraction": "0.01"}  # classifiers: their share of the labelled images
MODULES = {
    "simclr": "projects.ssl.methods.simclr",
    "classify": "projects.classify.train",
    "finetune": "projects.ssl.finetune",
    "supervised": "projects.ssl.supervised",
}
ENTRIES = {
    "simclr": {**TINY, "monitor_bank": "50", "fraction": "0.02"},
    "classify": {**LABELLED, "model": "resnet18", "cutmix_prob": "0.5"},
    "finetune": {**LABELLED, "encoder": "random"},
    "supervised": LABELLED,
}
PIPELINES = {
    "batched-bf16": {"augment": "batched", "pipeline": "device", "precision": "bf16", "num_workers": "0"},
    "albumentations-workers": {"augment": "albumentations", "pipeline": "workers", "num_workers": "1"},
}


@pytest.mark.parametrize("pipeline", list(PIPELINES))
@pytest.mark.parametrize("entry", list(ENTRIES))
def test_entry_point_runs_with_the_pipeline(entry: str, pipeline: str) -> None:
    module = importlib.import_module(MODULES[entry])
    module.run(from_dict(module.Config, {**ENTRIES[entry], **PIPELINES[pipeline], "register": "false"}))
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert run.info.status == "FINISHED"
    assert run.data.params["augment"] == PIPELINES[pipeline]["augment"]
    expected = PIPELINES[pipeline].get("precision") or resolve_precision("auto", torch.device("cpu"))
    assert run.data.tags["precision"] == expected
    assert math.isfinite(run.data.metrics["train_loss"]) and run.data.metrics["train_loss"] > 0
