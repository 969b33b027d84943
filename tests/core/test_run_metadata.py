"""What a researcher sees of a run in the MLflow UI: its experiment, name, description, metric names, and
the registry's descriptions."""

from __future__ import annotations

import dataclasses
import re

import pytest
from mlflow.tracking import MlflowClient

from projects.core import metrics, tracking
from projects.core.config import from_dict
from tests.conftest import REPO

TINY = {
    "dataset": "synthetic",
    "fraction": "0.02",
    "epochs": "2",
    "batch_size": "16",
    "knn_bank": "100",
    "warmup_epochs": "0",
    "num_workers": "0",
    "val_fraction": "0.05",
}


def simclr_config(**overrides: str):
    from projects.ssl.methods import simclr

    return from_dict(simclr.Config, {**TINY, **overrides})


def test_run_names_say_what_differs_from_the_defaults():
    name = tracking.default_run_name(simclr_config(temperature="0.2"), "simclr")
    assert name.startswith("simclr-resnet18-synthetic ")
    assert "temperature=0.2" in name and "fraction=0.02" in name
    # Two runs that differ only in temperature get different names; execution-only fields never show.
    other = tracking.default_run_name(
        simclr_config(temperature="0.3", num_workers="1", device="cpu"), "simclr"
    )
    assert other == name.replace("temperature=0.2", "temperature=0.3")
    # A long list of differences is cut, not the base.
    many = simclr_config(temperature="0.4", lr="0.1", weight_decay="0.01", seed="4", knn_k="5")
    long_name = tracking.default_run_name(many, "simclr")
    assert long_name.endswith(" ...") and len(long_name.split()) == 1 + tracking.MAX_NAMED_PARAMS + 1
    # Defaults alone: just entry, model and dataset.
    from projects.ssl.methods import simclr

    assert tracking.default_run_name(simclr.Config(), "simclr") == "simclr-resnet18-cifar10"


def test_a_run_lands_in_its_study_experiment_named_described_and_in_the_vocabulary(run_main):
    code, line = run_main("projects.ssl.methods.simclr", [f"--{k}={v}" for k, v in {**TINY}.items()])
    assert code == 0, line
    client = MlflowClient()
    experiment = client.get_experiment_by_name("ssl")
    assert (
        experiment is not None and experiment.tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
    )
    assert "SimCLR" in experiment.tags[tracking.NOTE_TAG]
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == tracking.default_run_name(simclr_config(), "simclr")
    assert not re.fullmatch(r"[a-z]+-[a-z]+-\d+", run.info.run_name)  # never MLflow's random name
    note = run.data.tags[tracking.NOTE_TAG]
    assert (
        note.startswith("SimCLR (Chen et al. 2020")
        and f"knn_top1 = {run.data.metrics['knn_top1']:.4g}" in note
    )

    # Every metric is in the vocabulary, and logged with that metric's step semantics.
    for key in run.data.metrics:
        definition = metrics.lookup(key)
        assert definition is not None, f"{key} is not in projects.core.metrics.VOCABULARY"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
        if definition.when == "epoch":
            assert steps == [1, 2], (key, steps)
        elif definition.when == "final":
            assert steps == [0], (key, steps)
    # The per-step loss has a point in every epoch (the last step of each at least).
    steps_per_epoch = run.data.metrics["pretrain_images"] // 16
    loss_steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss_step")]
    assert {(s - 1) // steps_per_epoch for s in loss_steps} == {0, 1}, loss_steps
    assert "lr" in run.data.metrics and "images_per_sec" not in run.data.metrics

    # The registry says what the model is and where each version comes from.
    model = client.get_registered_model("simclr-resnet18")
    assert "`simclr` entry point" in model.description and "knn_top1" in model.description
    version = client.get_model_version_by_alias("simclr-resnet18", "champion")
    assert run.info.run_id in version.description and "knn_top1 = " in version.description


def test_the_environment_chooses_the_experiment(monkeypatch):
    MlflowClient().create_experiment("my-ablation")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "my-ablation")
    with tracking.tracked_run(simclr_config(), "simclr", checkpointed=False) as tr:
        pass
    run = MlflowClient().get_run(tr.run_id)
    experiment = MlflowClient().get_experiment(run.info.experiment_id)
    assert experiment.name == "my-ablation"
    assert experiment.tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
    assert MlflowClient().get_experiment_by_name("ssl") is None


def test_nested_runs_stay_in_their_parents_experiment():
    with tracking.tracked_run(simclr_config(), "simclr", checkpointed=False, experiment=("mine", "")):
        with tracking.tracked_run(
            simclr_config(fraction="0.04"), "simclr", nested=True, checkpointed=False
        ) as c:
            pass
    child = MlflowClient().get_run(c.run_id)
    assert MlflowClient().get_experiment(child.info.experiment_id).name == "mine"


@pytest.mark.parametrize("entry", ["nerf", "classify", "simclr", "linear_eval", "tune"])
def test_every_entry_point_knows_its_experiment(entry):
    from projects.entrypoints import ENTRY_POINTS

    expected = {"nerf": "nerf", "classify": "vit-vs-cnn", "simclr": "ssl", "linear_eval": "ssl", "tune": None}
    found = tracking.study_experiment(ENTRY_POINTS[entry])
    assert (found[0] if found else None) == expected[entry]


def test_readme_lists_the_metric_vocabulary():
    readme = (REPO / "README.md").read_text()
    assert metrics.markdown_table() in readme, "regenerate with: python -m projects.core.metrics"
    names = [m.name for m in metrics.VOCABULARY]
    assert len(names) == len(set(names))
    assert all(dataclasses.asdict(m)["when"] in ("epoch", "step", "final") for m in metrics.VOCABULARY)
