"""nerfstudio's config.yml and final checkpoint as artifacts, registered so a scene's best run is findable.

The registered version's source is the run's ``nerfstudio/`` artifact folder (config.yml,
dataparser_transforms.json, nerfstudio_models/step-*.ckpt): ``mlflow artifacts download -u
models:/nerf-<scene>@champion`` gives what ``ns-eval``/``ns-render --load-config`` need.
"""

from __future__ import annotations

import re
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from projects.core.registry import promote_if_better

ARTIFACT_DIR = "nerfstudio"
CHAMPION_METRIC = "test_psnr"


def model_name(scene: str) -> str:
    return "nerf-" + (re.sub(r"[^A-Za-z0-9_.-]+", "-", scene).strip("-") or "scene")


def log_nerfstudio_files(base_dir: Path, checkpoint: Path) -> None:
    for name in ("config.yml", "dataparser_transforms.json"):
        if (base_dir / name).is_file():
            mlflow.log_artifact(str(base_dir / name), ARTIFACT_DIR)
    mlflow.log_artifact(str(checkpoint), f"{ARTIFACT_DIR}/nerfstudio_models")


def register_scene(name: str, psnr: float) -> str:
    """A new version of ``name`` from this run's nerfstudio files; ``champion`` moves if PSNR is higher."""
    client = MlflowClient()
    try:
        client.create_registered_model(
            name, description="nerfacto scenes (nerfstudio config.yml + checkpoint)"
        )
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    run_id = mlflow.active_run().info.run_id
    version = client.create_model_version(name, source=mlflow.get_artifact_uri(ARTIFACT_DIR), run_id=run_id)
    promote_if_better(name, version.version, CHAMPION_METRIC, psnr, greater_is_better=True)
    mlflow.set_tag("registered_model", f"{name}/{version.version}")
    return str(version.version)
