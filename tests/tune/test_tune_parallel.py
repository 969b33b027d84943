"""4 worker processes x 5 trials: exactly 20 trials and 20 child runs, on a journal file and on PostgreSQL;
optuna-dashboard reads the journal study back over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
from conftest import _free_port
from helpers import assert_trials_match_runs, parent_run

from projects.core.config import from_dict
from projects.tune import run as tune
from projects.tune.storage import open_storage

WORKERS, PER_WORKER = 4, 5
N = WORKERS * PER_WORKER


def run_parallel(write_study, storage: str) -> optuna.Study:
    # sleep_s makes trials overlap, so the four workers really race for the queue
    path = write_study(base={"epochs": 3, "sleep_s": 0.05})
    summary = tune.run(
        from_dict(
            tune.Config,
            {"study": path, "n_trials": N, "workers": WORKERS, "storage": storage, "register": False},
        )
    )
    assert summary["trials_run"] == N and summary["study_trials"] == N
    study = optuna.load_study(study_name="toy", storage=open_storage(storage))
    workers = {t.user_attrs["tune.worker"] for t in study.trials}
    assert len(workers) > 1, "trials did not run in several worker processes"
    (parent,) = parent_run("toy")
    assert parent.info.status == "FINISHED"
    assert_trials_match_runs(study, parent.info.run_id, N)
    return study


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_four_workers_journal_and_dashboard(write_study, tmp_path: Path) -> None:
    journal = str(tmp_path / "optuna-journal.log")
    study = run_parallel(write_study, journal)

    port = _free_port()
    dashboard = Path(sys.executable).with_name("optuna-dashboard")
    proc = subprocess.Popen(
        [str(dashboard), journal, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                studies = get_json(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, "optuna-dashboard did not come up"
                time.sleep(0.5)
        (summary,) = [s for s in studies if s["study_name"] == "toy"]
        detail = get_json(f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}")
        assert detail["name"] == "toy"
        assert len(detail["trials"]) == N
        states = sorted(t["state"].upper() for t in detail["trials"])
        assert states == sorted(t.state.name for t in study.trials)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_four_workers_postgres(write_study, postgres_url: str) -> None:
    study = run_parallel(write_study, postgres_url)  # asserts 20 trials and 20 matching child runs
    import psycopg2

    with psycopg2.connect(postgres_url) as conn, conn.cursor() as cursor:  # the rows really are in PostgreSQL
        cursor.execute("SELECT count(*) FROM trials")
        assert cursor.fetchone()[0] == len(study.trials) == N
