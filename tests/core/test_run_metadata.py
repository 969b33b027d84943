"""Run names, experiments and the metric vocabulary; what a finished entry run shows is checked by
``tests/run_checks.py`` in the entry points' own tests."""

from __future__ import annotations

import dataclasses

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
    "monitor_bank": "100",
    "warmup_fraction": "0",
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
