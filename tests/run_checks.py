"""Checks of what a researcher sees of a finished run in the MLflow UI, shared by the entry-point tests:
its experiment, name, description, metric names and step meanings, and the registry's descriptions."""

from __future__ import annotations

import re
from typing import Any

from mlflow.tracking import MlflowClient

from projects.core import metrics, tracking


def assert_run_reads_well(
    run: Any, experiment: str, headline: str, epochs: int, steps_per_epoch: int
) -> None:
    client = MlflowClient()
    found = client.get_experiment(run.info.experiment_id)
    assert found.name == experiment
    assert (
        found.tags[tracking.EXPERIMENT_KIND_TAG] == tracking.MODEL_TRAINING and found.tags[tracking.NOTE_TAG]
    )
    assert not re.fullmatch(r"[a-z]+-[a-z]+-\d+", run.info.run_name)  # never MLflow's random name
    note = run.data.tags[tracking.NOTE_TAG]
    assert f"Result: {headline} = {run.data.metrics[headline]:.4g}" in note, note

    # Every metric is in the vocabulary and logged with that metric's step meaning.
    for key in run.data.metrics:
        definition = metrics.lookup(key)
        assert definition is not None, f"{key} is not in projects.core.metrics.VOCABULARY"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
        if definition.when == "epoch":
            assert steps == list(range(1, epochs + 1)), (key, steps)
        elif definition.when == "final":
            assert steps == [0], (key, steps)
    # The per-step loss has a point in every epoch (at least the epoch's last step).
    loss_steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss_step")]
    assert {(s - 1) // steps_per_epoch for s in loss_steps} == set(range(epochs)), loss_steps
    assert "lr" in run.data.metrics and "images_per_sec" not in run.data.metrics


def assert_registry_described(name: str, run_id: str, metric: str) -> None:
    client = MlflowClient()
    model = client.get_registered_model(name)
    assert "entry point" in model.description and metric in model.description
    version = client.get_model_version_by_alias(name, "champion")
    assert run_id in version.description and f"{metric} = " in version.description
