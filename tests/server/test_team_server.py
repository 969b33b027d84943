"""Through one team tracking server (``mlflow server`` on PostgreSQL, artifacts proxied over HTTP), as a
team on several machines uses it: folders stand in for machines and share nothing but the servers."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from projects.classify import train as classify
from projects.core.config import from_dict
from projects.core.errors import ConfigError
from projects.core.guardian import HEARTBEAT_TAG, OWNER_TAG
from projects.core.loop import Callback
from projects.core.tracking import LEASE_S
from projects.tune.mlflow_trials import PARENT_ATTR, RUN_ID_ATTR, RUN_STATUS
from projects.tune.storage import open_storage
from tests.conftest import PYTHON, REPO
from tests.faults.helpers import CLASSIFY, finish, launch
from tests.servers import dashboard_trials, free_port, optuna_dashboard
from tests.ssl.test_entry_points import (
    METHOD_PARAMS,
    PROBE,
    TINY_SIMCLR,
    argv,
    assert_pretrained_and_champion,
    assert_probe,
    mlflow_run,
)


def runs_here(filter_string: str = "") -> list:
    """Runs of this test's experiment (the server is shared by the whole folder)."""
    name = os.environ["MLFLOW_EXPERIMENT_NAME"]
    return mlflow.search_runs(experiment_names=[name], filter_string=filter_string, output_format="list")


def assert_no_password_recorded(password: str) -> None:
    for run in runs_here():
        recorded = [*run.data.params.items(), *run.data.tags.items()]
        assert not [key for key, value in recorded if password in value], run.info.run_id


def test_simclr_champion_then_linear_eval_on_it_through_the_server(team_server, tmp_path):
    mlflow_run("simclr", {**TINY_SIMCLR, **METHOD_PARAMS["simclr"]})
    (run,) = runs_here("tags.`projects.entry_point` = 'simclr'")
    assert_pretrained_and_champion("simclr", run)
    mlflow_run("linear_eval", {**PROBE, "encoder": "models:/simclr-resnet18@champion"})
    (probe,) = runs_here("tags.`projects.entry_point` = 'linear_eval'")
    assert_probe(probe)

    # Checkpoints and the model are on the server's artifact store, and in no folder of the client.
    run_id = run.info.run_id
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    stored = team_server.artifacts / run.info.experiment_id / run_id / "artifacts" / "checkpoints"
    assert (stored / "last.pt").is_file() and (stored / "best.pt").is_file()
    champion = MlflowClient().get_model_version_by_alias("simclr-resnet18", "champion")
    model_id = champion.source.removeprefix("models:/")  # the logged model the version was made from
    model = MlflowClient().get_logged_model(model_id)
    assert model.artifact_location.startswith("mlflow-artifacts:/")
    assert (
        team_server.artifacts / model.artifact_location.removeprefix("mlflow-artifacts:/") / "MLmodel"
    ).is_file()
    for client_folder in (tmp_path, REPO):
        assert not list(client_folder.glob(f"mlruns/*/{run_id}"))
        assert not list(client_folder.glob(f"mlruns/*/models/{model_id}"))
    assert_no_password_recorded(team_server.password)


class Epochs(Callback):
    """Records the epochs trained here; a Ctrl-C at the end of epoch ``stop_after``."""

    def __init__(self, stop_after: int | None = None):
        self.stop_after = stop_after
        self.seen: list[int] = []

    def on_epoch_end(self, trainer, epoch, logs):
        self.seen.append(epoch)
        if epoch == self.stop_after:
            raise KeyboardInterrupt


def on_machine(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in ``folder`` with its own checkpoint folder, as another machine would."""
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("PROJECTS_CHECKPOINT_DIR", str(folder / "checkpoints"))
    return folder / "checkpoints"


def test_interrupted_run_resumes_on_another_machine_from_the_servers_checkpoint(tmp_path, monkeypatch):
    """A KILLED run resumes at once; one left RUNNING on a machine that went away resumes once its
    heartbeat is older than the lease. Each time the local checkpoint is gone and the server's is used."""
    cfg = from_dict(classify.Config, {**CLASSIFY, "label_fraction": "0.01"})  # 3 epochs of 3 steps
    client = MlflowClient()

    on_machine(tmp_path / "a", monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        classify.run(cfg, callbacks=[Epochs(stop_after=1)])
    (run,) = runs_here()
    run_id = run.info.run_id
    assert run.info.status == "KILLED"
    shutil.rmtree(tmp_path / "a")

    on_machine(tmp_path / "b", monkeypatch)
    epochs = Epochs(stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        classify.run(cfg, callbacks=[epochs])
    (run,) = runs_here()
    assert run.info.run_id == run_id and run.data.tags["projects.resumed"] == "true"
    assert epochs.seen == [2]  # epoch 1 came back from the server
    # Machine b loses power in epoch 3: the run stays RUNNING, its last heartbeat from there.
    client.update_run(run_id, "RUNNING")
    client.set_tag(run_id, OWNER_TAG, "machine-b:4242")
    client.set_tag(run_id, HEARTBEAT_TAG, str(time.time()))
    shutil.rmtree(tmp_path / "b")

    checkpoints = on_machine(tmp_path / "c", monkeypatch)
    with pytest.raises(
        ConfigError, match=f"run {run_id} with these parameters is running \\(machine-b:4242\\)"
    ):
        classify.run(cfg)  # alive as far as anyone can tell
    client.set_tag(run_id, HEARTBEAT_TAG, str(time.time() - LEASE_S - 1))
    epochs = Epochs()
    classify.run(cfg, callbacks=[epochs])
    assert epochs.seen == [3]
    (run,) = runs_here()
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    assert sorted(m.step for m in client.get_metric_history(run_id, "train_loss")) == [1, 2, 3]
    assert (checkpoints / run_id / "last.pt").is_file()


# Two invocations of one study; random sampling so that a repeated sampler stream would show as twins.
TOY_STUDY = {
    "entry_point": "tune_toy_entry",
    "objective": {"metric": "score", "direction": "maximize"},
    "pruner": {"type": "none"},
    "sampler": {"type": "random"},
    "base": {"epochs": 2, "sleep_s": 0.3},
    "search_space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
}
N1, N2 = 4, 3


def test_tune_on_two_machines_shares_one_study(team_server, tmp_path, monkeypatch):
    study_path = tmp_path / "toy.yaml"
    study_path.write_text(yaml.safe_dump(TOY_STUDY))
    storage = team_server.storage()
    name = f"toy-{os.urandom(4).hex()}"
    procs = []
    for machine, n_trials in (("a", N1), ("b", N2)):  # started together, as by two people
        folder = tmp_path / machine
        (folder / "tmp").mkdir(parents=True)
        monkeypatch.chdir(folder)
        params = {"study": str(study_path), "storage": storage, "study_name": name, "n_trials": str(n_trials)}
        env = {
            "PROJECTS_CHECKPOINT_DIR": str(folder / "checkpoints"),
            "TMPDIR": str(folder / "tmp"),  # run locks too
            "PYTHONPATH": os.environ["PYTHONPATH"],
        }
        procs.append(launch("tune", {**params, "register": "false"}, via="mlflow", env=env))
    with ThreadPoolExecutor(len(procs)) as pool:  # read both outputs at once: neither pipe may fill up
        for code, err in pool.map(finish, procs):
            assert code == 0, err[-3000:]

    study = optuna.load_study(study_name=name, storage=open_storage(storage))
    trials = study.get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(N1 + N2))  # every enqueued trial, once
    assert all(t.state in RUN_STATUS for t in trials), [t.state for t in trials]
    assert len({t.params["x"] for t in trials}) == N1 + N2, "two invocations drew the same params"

    parents = runs_here("tags.`projects.entry_point` = 'tune'")
    assert len(parents) == 2 and all(p.info.status == "FINISHED" for p in parents)
    children = {}
    for parent in parents:
        mine = runs_here(f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
        assert parent.data.metrics["trials_run"] == len(mine)
        for child in mine:
            children.setdefault(int(child.data.tags["optuna.trial_number"]), []).append((parent, child))
    assert sorted(children) == list(range(N1 + N2)) and all(len(c) == 1 for c in children.values())
    for trial in trials:
        ((parent, child),) = children[trial.number]
        assert trial.user_attrs[PARENT_ATTR] == parent.info.run_id  # the invocation whose worker ran it
        assert trial.user_attrs[RUN_ID_ATTR] == child.info.run_id
        assert child.info.status == RUN_STATUS[trial.state]

    with optuna_dashboard(storage.replace("postgresql://", "postgresql+psycopg2://")) as url:
        assert len(dashboard_trials(url, name)) == N1 + N2  # the whole study, from both machines
    assert_no_password_recorded(team_server.password)


def launcher_error(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Exit code and stderr of ``python -m projects.core.server`` that should fail at once."""
    command = [PYTHON, "-m", "projects.core.server", "--port", str(free_port()), *args]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env}, timeout=120)
    return done.returncode, done.stderr.strip()


@pytest.mark.parametrize(
    "case", ["wrong PGPASSWORD", "wrong password in the URI", "port in use", "no PostgreSQL"]
)
def test_server_script_bad_input_is_one_line_and_starts_nothing(case, team_server, tmp_path):
    data = tmp_path / "server-data"
    store = ["--backend-store-uri", team_server.storage("mlflow"), "--data", str(data)]
    env = {"PGPASSWORD": team_server.password}
    if case == "wrong PGPASSWORD":
        args, env, message = (
            store,
            {"PGPASSWORD": "wrong-pw"},
            'password authentication failed for user "mlflow"',
        )
    elif case == "wrong password in the URI":
        uri = team_server.storage("mlflow").replace("mlflow@", "mlflow:wrong-pw@")
        args, message = ["--backend-store-uri", uri, "--data", str(data)], "password authentication failed"
    elif case == "port in use":
        args, message = [*store, "--port", team_server.url.rpartition(":")[2]], "is in use"
    else:
        args, message = ["--data", str(data), "--pg-bin", str(tmp_path)], "apt-get install postgresql"
    code, err = launcher_error(args, env)
    assert code == 2 and err.startswith("error: ") and "\n" not in err and message in err, err
    assert "wrong-pw" not in err
    assert not data.exists()  # no cluster, no artifact folder


@pytest.mark.parametrize("where", ["PGPASSWORD", "URI"])
def test_tune_with_a_wrong_storage_password_writes_nothing(
    where, team_server, run_main, monkeypatch, tmp_path
):
    storage = team_server.storage()
    if where == "PGPASSWORD":
        monkeypatch.setenv("PGPASSWORD", "wrong-pw")
    else:
        storage = storage.replace("mlflow@", "mlflow:wrong-pw@")
    study_path = tmp_path / "toy.yaml"
    study_path.write_text(yaml.safe_dump(TOY_STUDY))
    name = f"toy-{os.urandom(4).hex()}"
    code, line = run_main(
        "projects.tune.run", argv({"study": str(study_path), "storage": storage, "study_name": name})
    )
    assert code == 2 and line.startswith("error: storage ") and "password authentication failed" in line, line
    assert "wrong-pw" not in line
    assert not runs_here()
    monkeypatch.setenv("PGPASSWORD", team_server.password)
    assert name not in optuna.get_all_study_names(open_storage(team_server.storage()))
