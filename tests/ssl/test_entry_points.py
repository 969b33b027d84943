"""End to end as a user runs the SSL entry points (their `main`, in-process; tiny settings); `mlflow run` of
SimCLR and linear_eval runs against a tracking server in tests/server/."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import PYTHON, REPO
from tests.run_checks import assert_registry_described, assert_run_reads_well
from tests.svg_checks import legend_texts

TINY_SIMCLR = {
    "dataset": "synthetic",
    "fraction": "0.04",
    "epochs": "2",
    "batch_size": "32",
    "monitor_bank": "200",
    "warmup_fraction": "0",
    "num_workers": "0",
    "val_fraction": "0.05",
}


def mlflow_run(entry: str, params: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(Path(PYTHON).parent / "mlflow"), "run", str(REPO), "-e", entry, "--env-manager", "local"]
    for key, value in params.items():
        cmd += ["-P", f"{key}={value}"]
    env = {**os.environ, "PATH": f"{Path(PYTHON).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def runs(filter_string: str = "") -> list:
    return mlflow.search_runs(search_all_experiments=True, filter_string=filter_string, output_format="list")


# Small projector/predictor: the paper's 4096-wide MLPs cost more than the tiny encoder run itself.
METHOD_PARAMS = {
    "simclr": {"temperature": "0.5"},
    "byol": {"proj_hidden_dim": "256", "pred_hidden_dim": "256"},
    "mocov3": {"proj_hidden_dim": "256", "pred_hidden_dim": "256", "stem": "imagenet"},
}


# linear_eval of a registered encoder (the same code for every method)
PROBE = {"dataset": "synthetic", "label_fraction": "0.1", "epochs": "3", "num_workers": "0"}


def argv(params: dict[str, str]) -> list[str]:
    return [item for key, value in params.items() for item in (f"--{key}", value)]


def assert_pretrained_and_champion(method: str, run, metric: str = "probe_top1") -> None:
    """What a finished pretraining run of ``method`` on TINY_SIMCLR holds, and its model is the champion
    on the monitor's ``metric``."""
    client = MlflowClient()
    assert run.info.status == "FINISHED" and run.info.run_name.startswith(f"{method}-resnet18-synthetic")
    assert run.data.params["dataset"] == "synthetic"
    assert all(run.data.params[k] == v for k, v in METHOD_PARAMS[method].items())
    assert len(client.get_metric_history(run.info.run_id, metric)) == 2
    assert len(client.get_metric_history(run.info.run_id, "monitor_time_s")) == 2
    assert run.data.metrics[f"best_{metric}"] == max(
        m.value for m in client.get_metric_history(run.info.run_id, metric)
    )
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == 2
    assert run.data.tags["data.train.fingerprint"] and run.data.tags["mlflow.source.git.commit"]
    artifacts = {f.path for f in client.list_artifacts(run.info.run_id, "checkpoints")}
    assert {"checkpoints/last.pt", "checkpoints/best.pt"} <= artifacts
    champion = client.get_model_version_by_alias(f"{method}-resnet18", "champion")
    assert champion.run_id == run.info.run_id
    assert float(champion.tags[metric]) == run.data.metrics[metric]  # champion follows the monitor


def assert_probe(probe) -> None:
    assert probe.info.status == "FINISHED" and probe.data.params["protocol"] == "linear"
    assert 10.0 < probe.data.metrics["test_top1"] <= 100.0  # 10 classes: above chance


# SimCLR runs through `mlflow run` on a tracking server, then its champion is probed
# (tests/server/test_team_server.py); the other methods in-process on the embedded store.
# One method with each monitor: the default probe, and the kNN monitor kept as a choice.
@pytest.mark.parametrize(("method", "monitor"), [("byol", "probe"), ("mocov3", "knn")])
def test_method_registers_its_champion(method, monitor, run_main):
    params = {**TINY_SIMCLR, **METHOD_PARAMS[method], "eval_metric": f"{monitor}_top1"}
    code, line = run_main(f"projects.ssl.methods.{method}", argv(params))
    assert code == 0, line
    (run,) = runs(f"tags.`projects.entry_point` = '{method}'")
    metric = f"{monitor}_top1"
    assert_pretrained_and_champion(method, run, metric)
    assert ("knn_top1" in run.data.metrics) == (monitor == "knn")
    # 190 images (0.04 of synthetic's train split less validation), batch 32: 5 steps per epoch
    assert_run_reads_well(run, "ssl", metric, epochs=2, steps_per_epoch=5)
    assert_registry_described(f"{method}-resnet18", run.info.run_id, metric)


# The resume path is the same for every method; what a momentum method adds (its EMA networks) is checked
# by an exact stop-and-resume of BYOL in tests/ssl/methods/test_methods.py.
@pytest.mark.parametrize("method", ["simclr"])
def test_interrupted_run_resumes_the_same_mlflow_run(method):
    from projects.core.config import from_dict
    from projects.core.loop import Callback
    from projects.ssl.methods import method_module

    module = method_module(method)
    params = {**TINY_SIMCLR, **METHOD_PARAMS[method], "epochs": "3", "register": "false"}
    cfg = from_dict(module.Config, {**params, "batch_size": "16", "fraction": "0.02"})

    class CtrlCAtEpoch2(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            if epoch == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        module.run(cfg, callbacks=[CtrlCAtEpoch2()])
    (killed,) = runs()
    assert killed.info.status == "KILLED"

    module.run(cfg)
    (resumed,) = runs()
    assert resumed.info.run_id == killed.info.run_id and resumed.info.status == "FINISHED"
    history = MlflowClient().get_metric_history(resumed.info.run_id, "train_loss")
    assert sorted(m.step for m in history) == [1, 2, 3]  # epochs 1-2 before, only 3 after


def test_ssl_study_leaves_a_parent_with_children_and_the_figure(tmp_path, run_main):
    import torch

    from projects.core.models import create_model

    # Stand-in "ImageNet weights" in torchvision's file format, passed as weights_path (offline here).
    weights = tmp_path / "resnet18-f37072fd.pth"
    torch.save(create_model("resnet18", num_classes=1000, stem="imagenet").state_dict(), weights)
    code, line = run_main(
        "projects.ssl.study",
        argv(
            {
                "methods": "simclr,byol",
                "method_params": "byol.proj_hidden_dim=256,byol.pred_hidden_dim=256,simclr.temperature=0.2",
                "pretrain_datasets": "synthetic",
                "fractions": "0.02",
                "eval_dataset": "synthetic",
                "label_fractions": "0.02,0.04",
                "baselines": "imagenet",  # the supervised baseline is its own entry point, tested alone
                "pretrain_epochs": "1",
                "eval_epochs": "1",
                "supervised_epochs": "1",
                "batch_size": "32",
                "monitor_bank": "100",
                "num_workers": "0",
                "weights_path": str(weights),
            }
        ),
    )
    assert code == 0, line
    (parent,) = runs("tags.`projects.entry_point` = 'ssl_study'")
    assert parent.info.status == "FINISHED"
    children = runs(f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    kinds = sorted(c.data.tags["projects.entry_point"] for c in children)
    # 2 encoders x 2 label fractions + imagenet x 2 probes
    assert kinds == ["byol"] + ["linear_eval"] * 6 + ["simclr"]
    assert all(c.info.status == "FINISHED" for c in children)
    (pre,) = [c for c in children if c.data.tags["projects.entry_point"] == "simclr"]
    assert pre.data.params["temperature"] == "0.2"
    probes = [c for c in children if c.data.tags["projects.entry_point"] == "linear_eval"]
    assert sorted(c.data.params["label_fraction"] for c in probes) == ["0.02"] * 3 + ["0.04"] * 3
    files = {f.path for f in MlflowClient().list_artifacts(parent.info.run_id)}
    assert {"ssl_study.svg", "ssl_study_table.json"} <= files
    svg = Path(mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, artifact_path="ssl_study.svg"))
    assert sorted(legend_texts(svg.read_text())) == [
        "byol on synthetic",
        "imagenet features",
        "simclr on synthetic",
    ]
    # The parent's headline under the vocabulary's names: the best SSL probe per label fraction, and
    # test_top1 = the best SSL probe with the most labels (so the runs table compares it with any run).
    metrics = parent.data.metrics
    assert {"labels_0.02/test_top1", "labels_0.04/test_top1", "test_top1", "probe_top1"} <= set(metrics)
    ssl_probes = [p for p in probes if "imagenet" not in p.data.params["encoder"]]
    best = max(p.data.metrics["test_top1"] for p in ssl_probes if p.data.params["label_fraction"] == "0.04")
    assert metrics["test_top1"] == metrics["labels_0.04/test_top1"] == best
    # Every run's name says what differs: all distinct, none random.
    assert len({c.info.run_name for c in children}) == len(children)


@pytest.mark.parametrize(
    ("module", "argv", "message"),
    [
        ("projects.ssl.methods.simclr", ["--temperature", "0"], "temperature must be > 0"),
        ("projects.ssl.methods.simclr", ["--dataset", "imagenet"], "dataset='imagenet' is not allowed"),
        ("projects.ssl.methods.byol", ["--momentum_base", "1.5"], "momentum_base <= momentum_final <= 1"),
        (
            "projects.ssl.methods.mocov3",
            ["--arch", "vit_d192_l25", "--patch_size", "5"],
            "patch_size=5 does not",
        ),
        ("projects.ssl.study", ["--methods", "simclr,swav"], "method='swav' is not allowed"),
        ("projects.ssl.study", ["--method_params", "byol.lr=1"], "method_params name methods this study"),
        ("projects.ssl.methods.simclr", ["--fraction", "2"], "fraction must be in (0, 1]"),
        (
            "projects.ssl.linear_eval",
            ["--encoder", "models:/nope@champion", "--dataset", "synthetic"],
            "does not resolve",
        ),
        ("projects.ssl.linear_eval", ["--encoder", "not-a-thing"], "is not random, imagenet"),
        ("projects.ssl.finetune", ["--encoder", "imagenet", "--dataset", "synthetic"], "ImageNet weights"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_run_left_running(
    tmp_path, monkeypatch, run_main, module, argv, message
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    code, line = run_main(module, argv)
    assert code == 2 and line.startswith("error:") and message in line, line
    assert not [r for r in runs() if r.info.status == "RUNNING"]


def test_checkpoint_that_is_not_one_is_refused(tmp_path, run_main):
    bogus = tmp_path / "bogus.pt"
    bogus.write_text("not a checkpoint")
    code, line = run_main("projects.ssl.linear_eval", ["--encoder", str(bogus)])
    assert code == 2 and "is not a torch checkpoint" in line


def test_pretraining_on_a_flat_folder_of_photos_runs_without_a_monitor(tmp_path, run_main):
    import numpy as np
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):  # sizes differ: every image is resized and centre-cropped to image_size
        Image.fromarray(rng.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    argv = ["--dataset", "folder", "--data_dir", str(photos), "--image_size", "16", "--batch_size", "4"]
    argv += ["--epochs", "1", "--warmup_fraction", "0", "--num_workers", "0", "--stem", "imagenet"]
    code, line = run_main("projects.ssl.methods.simclr", argv)  # the default probe needs labels
    assert code == 2 and "eval_metric=probe_top1 needs labelled images" in line and "eval_metric=none" in line
    assert runs() == []
    code, line = run_main("projects.ssl.methods.simclr", [*argv, "--eval_metric", "none"])
    assert code == 0, line
    (run,) = runs()
    assert run.info.status == "FINISHED" and run.data.tags["monitor"].startswith("off")
    assert "probe_top1" not in run.data.metrics and run.data.metrics["pretrain_images"] == 12
    champion = MlflowClient().get_model_version_by_alias("simclr-resnet18", "champion")
    assert champion.run_id == run.info.run_id and "train_loss" in champion.tags
