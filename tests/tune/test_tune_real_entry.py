"""``mlflow run . -e tune`` on a shipped study file driving a real entry point (tiny settings)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from helpers import assert_trials_match_runs, child_runs, parent_run
from mlflow.tracking import MlflowClient

from tests.conftest import REPO

MLFLOW = str(Path(sys.executable).with_name("mlflow"))
TINY = "dataset=synthetic,epochs=2,label_fraction=0.02,val_fraction=0.02,image_size=8,batch_size=16,num_workers=0,cutmix_prob=0"


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


TINY_SSL = (
    "dataset=synthetic,epochs=2,fraction=0.02,batch_size=16,monitor_bank=50,num_workers=0,warmup_fraction=0,"
    "stem=imagenet,proj_hidden_dim=64,pred_hidden_dim=64"
)


@pytest.mark.parametrize("method", ["byol", "mocov3"])
def test_ssl_method_study_prunes_on_the_probe_every_epoch_and_registers_the_best(
    isolated_mlflow: Path, method
) -> None:
    from projects.core.config import from_dict
    from projects.tune import run as tune

    journal = isolated_mlflow / "journal.log"
    values = {"study": method, "n_trials": 2, "overrides": TINY_SSL, "storage": str(journal)}
    tune.run(from_dict(tune.Config, values))
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    # the pruner sees the objective after every epoch, as for any entry point
    assert [sorted(t.intermediate_values) for t in study.trials] == [[1, 2], [1, 2]]
    (parent,) = parent_run(summary.study_name)
    assert_trials_match_runs(study, parent.info.run_id, 2)
    client = MlflowClient()
    for trial in study.trials:  # what the pruner saw is the run's probe_top1 curve
        history = client.get_metric_history(trial.user_attrs["mlflow_run_id"], "probe_top1")
        assert {m.step: m.value for m in history} == trial.intermediate_values
    champion = client.get_model_version_by_alias(f"{method}-resnet18", "champion")
    assert champion.run_id == study.best_trial.user_attrs["mlflow_run_id"]
    assert float(champion.tags["probe_top1"]) == study.best_value
