"""Bad input: one clear line, exit code 2, and nothing written (no journal, no table, no MLflow run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from projects.core.entry import main
from projects.entrypoints import ENTRY_POINTS
from projects.tune import run as tune
from projects.tune.spec import STUDIES_DIR, load_spec, validate
from projects.tune.storage import DEFAULT_JOURNAL


@pytest.mark.parametrize("path", sorted(STUDIES_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_repo_studies_are_valid(path: Path) -> None:
    spec = load_spec(path.stem)
    assert spec.entry_point in ENTRY_POINTS
    validate(spec, {})
    fields = set(spec.config_class().__dataclass_fields__)
    assert set(spec.search_space) <= fields and set(spec.base) <= fields


def no_runs() -> bool:
    client = MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    return not client.search_runs(experiments)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--study", "no_such_study"], "unknown study 'no_such_study'; choose one of: "),
        (["--study", "{toy}", "--n_trials", "0"], "n_trials must be > 0"),
        (["--study", "{bad_key}"], "search_space key(s) ['depth'] are not parameters of entry point"),
        (["--study", "{toy}", "--overrides", "nope=1"], "overrides key(s) ['nope'] are not parameters"),
        (["--study", "{toy}", "--overrides", "x=0.5"], "overrides fix ['x'], which study 'toy' searches"),
        (["--study", "{toy}", "--storage", "postgresql://u:secret@127.0.0.1:9/db"], "is unreachable"),
        (["--study", "{toy}", "--pruner", "asha"], "pruner='asha' is not allowed"),
        (["--study", "simclr", "--overrides", "nproc_per_node=2"], "nproc_per_node must be 1"),
    ],
    ids=[
        "unknown-study",
        "n_trials-0",
        "unknown-key",
        "unknown-override",
        "searched-override",
        "unreachable-storage",
        "unknown-pruner",
        "ddp-trial",
    ],
)
def test_bad_input_one_line_nothing_written(write_study, capsys, argv: list[str], message: str) -> None:
    toy = write_study()
    bad_key = write_study("bad", search_space={"depth": {"type": "int", "low": 1, "high": 4}})
    argv = [a.format(toy=toy, bad_key=bad_key) for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        main(tune.Config, tune.run, argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err, err
    assert "secret" not in err  # a password never reaches a message
    assert not Path(DEFAULT_JOURNAL).exists()
    assert no_runs()


def test_cli_unknown_study(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "projects.tune.run", "--study", "nope"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    known = ", ".join(sorted(p.stem for p in STUDIES_DIR.glob("*.yaml")))
    assert out.stderr.strip().splitlines()[-1] == f"error: unknown study 'nope'; choose one of: {known}"
    assert not (tmp_path / DEFAULT_JOURNAL).exists()
