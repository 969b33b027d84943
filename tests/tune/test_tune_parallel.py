"""4 worker processes x 5 trials: exactly 20 trials and 20 child runs, on a journal file and on PostgreSQL;
optuna-dashboard reads the journal study back over HTTP."""

from __future__ import annotations

from pathlib import Path

import optuna
from helpers import assert_trials_match_runs, parent_run

from projects.core.config import from_dict
from projects.tune import run as tune
from projects.tune.storage import open_storage
from tests.servers import dashboard_trials, optuna_dashboard

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


def test_four_workers_journal_and_dashboard(write_study, tmp_path: Path) -> None:
    journal = str(tmp_path / "optuna-journal.log")
    study = run_parallel(write_study, journal)
    with optuna_dashboard(journal) as url:
        trials = dashboard_trials(url, "toy")
    assert len(trials) == N
    assert sorted(t["state"].upper() for t in trials) == sorted(t.state.name for t in study.trials)


def test_four_workers_postgres(write_study, postgres_url: str) -> None:
    study = run_parallel(write_study, postgres_url)  # asserts 20 trials and 20 matching child runs
    import psycopg2

    with psycopg2.connect(postgres_url) as conn, conn.cursor() as cursor:  # the rows really are in PostgreSQL
        cursor.execute("SELECT count(*) FROM trials")
        assert cursor.fetchone()[0] == len(study.trials) == N


def test_workers_starting_together_on_an_empty_database_share_its_schema(postgres_url: str) -> None:
    """Machines that start a study at the same moment race to create Optuna's tables: none may fail."""
    import threading

    import psycopg2

    conn = psycopg2.connect(postgres_url)
    conn.autocommit = True
    conn.cursor().execute("CREATE DATABASE empty_race")
    conn.close()
    url = postgres_url.rpartition("/")[0] + "/empty_race"
    start, errors = threading.Barrier(4), []

    def open_at_once() -> None:
        start.wait()
        try:
            open_storage(url)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_at_once) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
