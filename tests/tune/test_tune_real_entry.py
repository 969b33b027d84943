"""``mlflow run . -e tune`` on a shipped study file driving a real entry point (tiny settings)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
from helpers import assert_trials_match_runs, child_runs, parent_run
from mlflow.tracking import MlflowClient

from tests.conftest import REPO

MLFLOW = str(Path(sys.executable).with_name("mlflow"))
TINY = "dataset=synthetic,epochs=2,fraction=0.02,val_fraction=0.02,image_size=8,batch_size=16,num_workers=0,cutmix_prob=0"


def test_classify_study_through_mlflow_run(isolated_mlflow: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    args = [MLFLOW, "run", str(REPO), "-e", "tune", "--env-manager", "local"]
    journal = isolated_mlflow / "journal.log"  # `mlflow run` runs in the repo: keep the study out of it
    for param in ("study=classify_resnet18", "n_trials=2", f"overrides={TINY}", f"storage={journal}"):
        args += ["-P", param]
    result = subprocess.run(args, cwd=isolated_mlflow, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    # the overrides are part of the study name, so this smoke study never mixes with the real one
    (summary,) = [
        s for s in optuna.get_all_study_summaries(storage) if s.study_name.startswith("classify_resnet18@")
    ]
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    (parent,) = parent_run(summary.study_name)
    assert parent.info.status == "FINISHED"
    assert_trials_match_runs(study, parent.info.run_id, 2)
    client = MlflowClient()
    for run in child_runs(parent.info.run_id):
        assert (
            run.data.tags["projects.entry_point"] == "classify" and run.data.params["dataset"] == "synthetic"
        )
        assert len(client.get_metric_history(run.info.run_id, "val_top1")) == 2  # per-epoch objective
    champion = client.get_model_version_by_alias("classify-resnet18", "champion")
    assert champion.run_id == study.best_trial.user_attrs["mlflow_run_id"]
