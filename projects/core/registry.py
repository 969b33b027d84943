"""Model registry: log the final model, register it, and move ``champion`` only when it is better."""

from __future__ import annotations

import logging
from typing import Any

import mlflow
import numpy as np
import torch
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from projects.core.errors import CheckpointError

log = logging.getLogger(__name__)

CHAMPION = "champion"
# Explicit requirements skip MLflow's slow import-based inference; the project env is the real spec.
PIP_REQUIREMENTS = [f"torch=={torch.__version__.split('+')[0]}", "torchvision", "timm", "numpy"]


def champion_value(name: str, metric: str) -> float | None:
    """The metric recorded on the current champion version, or None if there is none."""
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    value = version.tags.get(metric)
    return float(value) if value is not None else None


def promote_if_better(
    name: str, version: str | int, metric: str, value: float, greater_is_better: bool = True
) -> bool:
    """Tag ``version`` with its metric and give it ``champion`` if it beats the current champion."""
    client = MlflowClient()
    client.set_model_version_tag(name, str(version), metric, repr(float(value)))
    current = champion_value(name, metric)
    better = current is None or (value > current if greater_is_better else value < current)
    if better:
        client.set_registered_model_alias(name, CHAMPION, str(version))
        client.set_registered_model_tag(name, "champion_metric", metric)
    describe(name, str(version), metric, value, greater_is_better)
    log.info(
        "registered %s v%s (%s=%.4f); champion %s (previous %s)",
        name,
        version,
        metric,
        value,
        "moved here" if better else "kept",
        current,
    )
    return better


def describe(
    name: str,
    version: str,
    metric: str,
    value: float,
    greater_is_better: bool,
) -> None:
    """Descriptions the registry pages show: what the model is and how its champion is chosen; for the
    version, where it comes from and its figure."""
    client = MlflowClient()
    source = client.get_model_version(name, version)
    run = client.get_run(source.run_id) if source.run_id else None
    entry = run.data.tags.get("projects.entry_point", "?") if run else "?"
    better = "higher" if greater_is_better else "lower"
    if not client.get_registered_model(name).description:
        client.update_registered_model(
            name,
            description=(
                f"Models registered by the `{entry}` entry point. `{CHAMPION}` is the version with the "
                f"best {metric} ({better} is better): `models:/{name}@{CHAMPION}`."
            ),
        )
    origin = f"run `{run.info.run_name}` ({run.info.run_id})" if run else "an unknown run"
    client.update_model_version(name, version, description=f"{metric} = {value:.4g}; from {origin}.")


def log_and_register(
    model: torch.nn.Module,
    name: str,
    metric: str,
    value: float,
    input_example: np.ndarray,
    greater_is_better: bool = True,
) -> str:
    """Log ``model`` in the active run as an MLflow model, register it under ``name``; return the version.

    Once per run: a resumed run that was stopped after registering reuses its version (no duplicate).
    """
    run_id = mlflow.active_run().info.run_id
    existing = registered_version(name, run_id)
    if existing is not None:
        promote_if_better(name, existing, metric, value, greater_is_better)
        return existing
    model = model.eval().cpu()
    info = mlflow.pytorch.log_model(
        model,
        name="model",
        input_example=input_example,
        registered_model_name=name,
        pip_requirements=PIP_REQUIREMENTS,
        serialization_format="pickle",  # a trainable nn.Module comes back (pt2 gives an exported graph)
    )
    version = str(info.registered_model_version)
    promote_if_better(name, version, metric, value, greater_is_better)
    return version


def registered_version(name: str, run_id: str) -> str | None:
    """The READY version of ``name`` registered from ``run_id``, if any."""
    versions = MlflowClient().search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    ready = [v.version for v in versions if v.status == "READY"]
    return str(max(map(int, ready))) if ready else None


def load_model(uri: str, map_location: str | torch.device = "cpu") -> Any:
    """Load a ``models:/`` or ``runs:/`` PyTorch model; one clear error if the URI does not resolve."""
    try:
        return mlflow.pytorch.load_model(uri, map_location=map_location)
    except (MlflowException, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"model URI {uri!r} does not resolve: {first_line}") from None
