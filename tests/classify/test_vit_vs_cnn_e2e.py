"""``mlflow run . -e vit_vs_cnn`` end to end on tiny synthetic data with the real model configs."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from projects.classify.report import CURVES
from tests.conftest import REPO
from tests.svg_checks import legend_texts

MLFLOW = str(Path(sys.executable).with_name("mlflow"))
EPOCHS = 2
# Real ResNet-18 and ViT (vit_d192_l25); tiny data: 20 training images, 100 validation, 8x8 pixels (2x2 patches).
TINY = {
    "dataset": "synthetic",
    "label_fraction": 0.005,
    "val_fraction": 0.02,
    "image_size": 8,
    "epochs": EPOCHS,
    "batch_size": 8,
    "warmup_fraction": 0,
    "num_workers": 0,
    "register": "false",
    "cutmix_prob": 1.0,
    "seed": 3,
}


def mlflow_run(entry: str, params: dict[str, object], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    args = [MLFLOW, "run", str(REPO), "-e", entry, "--env-manager", "local"]
    for key, value in params.items():
        args += ["-P", f"{key}={value}"]
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def read_artifact(run_id: str, path: str) -> str:
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path)).read_text()


def test_vit_vs_cnn_parent_with_two_finished_children_and_report(isolated_mlflow: Path) -> None:
    result = mlflow_run("vit_vs_cnn", TINY, cwd=isolated_mlflow)
    assert result.returncode == 0, result.stderr[-3000:]

    client = MlflowClient()
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.tags["projects.entry_point"] == "vit_vs_cnn"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(c.data.params["model"] for c in children) == ["resnet18", "vit_d192_l25"]
    assert all(c.info.status == "FINISHED" for c in children)

    by_model = {c.data.params["model"]: c for c in children}
    cnn, vit = by_model["resnet18"].data.params, by_model["vit_d192_l25"].data.params
    # Same recipe and seed; each its own tuned lr / weight decay.
    differ = {k for k in cnn if cnn[k] != vit.get(k)}
    assert differ == {"model", "lr", "weight_decay", "num_parameters"}
    assert (float(cnn["lr"]), float(vit["lr"])) == (1e-3, 4e-4) and cnn["seed"] == "3"

    for child in children:
        for key in CURVES:
            assert len(client.get_metric_history(child.info.run_id, key)) == EPOCHS, key
        assert {"test_top1", "test_top5", "best_val_top1"} <= set(child.data.metrics)
        table = list(csv.DictReader(io.StringIO(read_artifact(child.info.run_id, "parameter_table.csv"))))
        total = sum(int(row["count"]) for row in table if row["name"] != "TOTAL")
        assert total == int(child.data.params["num_parameters"])
        assert "checkpoints/last.pt" in {
            f.path for f in client.list_artifacts(child.info.run_id, "checkpoints")
        }

    # One small SVG, a line per model, its legend inside the picture.
    svg = read_artifact(parent.info.run_id, "vit_vs_cnn.svg")
    assert legend_texts(svg) == ["resnet18", "vit_d192_l25"]
    summary = json.loads(read_artifact(parent.info.run_id, "vit_vs_cnn_table.json"))
    rows = [dict(zip(summary["columns"], row, strict=True)) for row in summary["data"]]
    assert sorted(r["model"] for r in rows) == ["resnet18", "vit_d192_l25"]
    for row in rows:
        child = by_model[row["model"]]
        assert row["num_parameters"] == int(child.data.params["num_parameters"])
        assert row["test_top1"] == child.data.metrics["test_top1"] and row["epochs"] == EPOCHS
        assert row["wall_time_s"] > 0 and row["train_images_per_sec"] > 0
    assert parent.data.metrics["vit/test_top1"] == by_model["vit_d192_l25"].data.metrics["test_top1"]
    # The parent's test_top1 is the model validation picks.
    # (A tie goes to the first model trained, resnet18, as in the parent.)
    ordered = [by_model["resnet18"], by_model["vit_d192_l25"]]
    picked = max(ordered, key=lambda r: r.data.metrics["best_val_top1"])
    assert parent.data.metrics["test_top1"] == picked.data.metrics["test_top1"]


def test_interrupted_comparison_resumes_without_retraining_the_finished_child() -> None:
    from projects.classify import compare
    from projects.core.config import from_dict
    from projects.core.loop import Callback

    cfg = from_dict(compare.Config, {k: str(v) for k, v in TINY.items()})

    class CtrlCInTheViT(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            if type(trainer.model).__name__ == "VisionTransformer" and epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        compare.run(cfg, callbacks=[CtrlCInTheViT()])
    client = MlflowClient()

    def all_runs():
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
        return {
            r.data.tags.get("projects.entry_point", "") + ":" + r.data.params.get("model", ""): r
            for r in runs
        }

    before = all_runs()
    assert {k: r.info.status for k, r in before.items()} == {
        "vit_vs_cnn:": "KILLED",
        "classify:resnet18": "FINISHED",
        "classify:vit_d192_l25": "KILLED",
    }

    compare.run(cfg)
    after = all_runs()
    assert len(after) == 3  # same parent, the finished ResNet-18 reused, the ViT continued
    for key, run in before.items():
        assert after[key].info.run_id == run.info.run_id and after[key].info.status == "FINISHED"
    vit_id = after["classify:vit_d192_l25"].info.run_id
    assert sorted(m.step for m in client.get_metric_history(vit_id, "train_loss")) == [1, 2]
    assert (
        after["vit_vs_cnn:"].data.metrics["resnet18/test_top1"]
        == before["classify:resnet18"].data.metrics["test_top1"]
    )
