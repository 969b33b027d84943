"""What the team tracking server costs a run (not a test): the same SimCLR run on the embedded store
(SQLite + ./mlruns) and through ``make server`` (HTTP, PostgreSQL, artifacts proxied by the server).

Both run ``python -m projects.ssl.methods.simclr`` with identical params and seed, each in a fresh folder,
interleaved A B A B so that whatever else the machine does hits both alike. Per run: the process's wall
time, the MLflow run's own duration (start to end: without interpreter start and imports) and the seconds
spent inside MLflow's client (every public ``MlflowClient`` method, which the fluent API and model logging
go through, clocked in the run's process; nested calls counted once). Reported: server / embedded for each
pair and for the sums, and each store's share of the run's duration spent in MLflow: that share does not
depend on how fast the machine happened to train, which the wall-time ratio does. The server runs with the launcher's defaults
(``--workers 2``, PostgreSQL with fsync) on this machine, as a small team server would.

    .venv/bin/python bench/tracking_overhead.py --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

from projects.core.server import free_port, wait_healthy

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "cpu-tracking-overhead.jsonl"
# `make demo`'s SimCLR run: synthetic data, 3 epochs of 8 steps, kNN monitor and registry included.
DEMO = {
    "dataset": "synthetic",
    "fraction": "0.2",
    "epochs": "3",
    "batch_size": "128",
    "monitor_bank": "1000",
    "warmup_fraction": "0",
}


def start_server(work: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "projects.core.server", "--data", str(work / "server")]
    command += ["--port", str(port), "--pg-port", str(free_port())]
    log = open(work / "server.log", "ab")  # noqa: SIM115 (the server keeps it)
    server = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=log, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, server)
    return server, url


def simclr(params: dict[str, str], uri: str, folder: Path, experiment: str) -> dict[str, float]:
    """One run in a fresh folder; its wall time and its MLflow run's duration."""
    folder.mkdir(parents=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_EXPERIMENT_NAME": experiment,
        "PROJECTS_CHECKPOINT_DIR": str(folder / "checkpoints"),
    }
    clock = folder / "mlflow_s.json"
    command = [sys.executable, __file__, "--child", str(clock), "--"]
    command += [item for key, value in params.items() for item in (f"--{key}", value)]
    start = time.perf_counter()
    with open(folder / "run.log", "w") as log:
        subprocess.run(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
    wall = time.perf_counter() - start
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    run_s = (run.info.end_time - run.info.start_time) / 1000
    mlflow_s = json.loads(clock.read_text())["mlflow_s"]
    return {"wall_s": wall, "run_s": run_s, "mlflow_s": mlflow_s, "mlflow_share": mlflow_s / run_s}


def child(clock: Path, argv: list[str]) -> None:
    """The SimCLR entry point in this process, with every public ``MlflowClient`` method clocked."""
    import functools

    from mlflow.tracking import MlflowClient as Client

    spent, depth = [0.0], [0]

    def timed(method):
        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            depth[0] += 1
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    spent[0] += time.perf_counter() - start

        return wrapper

    for name, value in list(vars(Client).items()):
        if callable(value) and not name.startswith("_"):
            setattr(Client, name, timed(value))
    from projects.core.entry import main as entry_main
    from projects.ssl.methods import simclr as entry

    entry_main(entry.Config, entry.run, argv)
    clock.write_text(json.dumps({"mlflow_s": spent[0]}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=2, help="pairs of runs (A B A B ...)")
    parser.add_argument("--params", default="{}", help="JSON: SimCLR params replacing the demo's")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child:
        child(args.child, rest[1:] if rest[:1] == ["--"] else rest)
        return
    params = {**DEMO, **{k: str(v) for k, v in json.loads(args.params).items()}}

    work = Path(tempfile.mkdtemp(prefix="tracking-bench-"))
    work.chmod(0o755)  # the local cluster runs as user postgres under root
    server, url = start_server(work)
    rows = []
    try:
        for repeat in range(args.repeats):
            for store in ("embedded", "server"):
                folder = work / f"{store}-{repeat}"
                uri = f"sqlite:///{folder / 'mlflow.db'}" if store == "embedded" else url
                row = {"store": store, "repeat": repeat, **simclr(params, uri, folder, f"bench-{repeat}")}
                print(json.dumps(row), flush=True)
                rows.append(row)
    finally:
        os.kill(server.pid, signal.SIGINT)
        server.wait(timeout=120)
        shutil.rmtree(work, ignore_errors=True)

    def total(store: str, key: str) -> float:
        return sum(r[key] for r in rows if r["store"] == store)

    pairs = [
        round(b["wall_s"] / a["wall_s"], 4)
        for a, b in zip(rows[0::2], rows[1::2], strict=True)  # (embedded, server) of one repeat
    ]
    summary = {
        "bench": "tracking_overhead",
        "params": params,
        "cpus": os.cpu_count(),
        "runs": rows,
        "wall_ratio_per_pair": pairs,
        "wall_ratio": round(total("server", "wall_s") / total("embedded", "wall_s"), 4),
        "run_ratio": round(total("server", "run_s") / total("embedded", "run_s"), 4),
        "mlflow_share": {
            store: round(total(store, "mlflow_s") / total(store, "run_s"), 4)
            for store in ("embedded", "server")
        },
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}))
    with RESULTS.open("a") as out:
        out.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main()
