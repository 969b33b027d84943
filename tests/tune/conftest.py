"""Helpers of the tune tests: this folder importable (``tune_toy_entry``) here and in workers; study files."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.servers import postgres

HERE = Path(__file__).resolve().parent
# Not ``tests.tune.toy_entry``: an installed package named ``tests`` shadows the repo's namespace package.
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

TOY_STUDY = {
    "entry_point": "tune_toy_entry",
    "objective": {"metric": "score", "direction": "maximize"},
    "pruner": {"type": "median", "n_startup_trials": 3, "n_warmup_steps": 1},
    "sampler": {"type": "random"},
    "base": {"epochs": 6},
    "search_space": {
        "x": {"type": "float", "low": 0.0, "high": 1.0},
        "y": {"type": "float", "low": 0.0, "high": 1.0},
    },
}


@pytest.fixture(autouse=True)
def toy_on_pythonpath(isolated_mlflow: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes import the toy entry module too."""
    monkeypatch.setenv("PYTHONPATH", str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""))


@pytest.fixture
def write_study(tmp_path: Path):
    """write_study(name, **changes) -> path of a toy study file (top-level keys replaced by changes)."""

    def write(name: str = "toy", **changes) -> str:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**TOY_STUDY, **changes}, sort_keys=False))
        return str(path)

    return write


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL server on a loopback port, trust authentication."""
    with postgres("tune", "optuna") as cluster:
        yield cluster.url("optuna")
