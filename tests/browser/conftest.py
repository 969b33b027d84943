"""A real browser on real servers: one ``mlflow server`` (loopback, one worker) over a store filled once for
this folder, optuna-dashboard over the journal of a real tiny ``tune``, and headless Chromium from Debian's
``chromium`` package (.ci/apt-packages.txt) driven by Playwright; Playwright's own browser download is
never used.

The store holds runs in the shapes the entry points leave (names, tags, per-epoch curves, a registered
model with its ``champion`` alias, figures drawn by the project's own figure code) plus one real ``tune``
of the tune tests' toy entry point, so the pages show what a person would see after a study.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow.tracking import MlflowClient

from projects.core.errors import ConfigError
from projects.core.server import free_port, stop_process_group, wait_healthy
from tests.conftest import PYTHON, REPO
from tests.run_shapes import make_run
from tests.study_tables import ssl_study_rows
from tests.tune import conftest as tune_conftest

TOY_ENTRY_DIR = REPO / "tests" / "tune"  # tune_toy_entry: the cheap entry point the tune tests drive
if str(TOY_ENTRY_DIR) not in sys.path:
    sys.path.insert(0, str(TOY_ENTRY_DIR))

CHROMIUM_ARGS = [
    "--no-sandbox",  # root in a container
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 60_000  # this 2-core machine is slow: the UI's first render can take many seconds
VIEWPORT = {"width": 1600, "height": 1000}
SCREENSHOTS_ENV = "BROWSER_TEST_SCREENSHOTS"  # a folder: every test's last page is saved there
ENTRY = "projects.entry_point"
NOTE = "mlflow.note.content"
KIND = {"mlflow.experimentKind": "custom_model_development"}
T0 = int(time.time() * 1000) - 3_600_000
# The toy study of the real `tune` run: its objective is what optuna-dashboard must name.
TOY_STUDY = {
    **tune_conftest.TOY_STUDY,
    "base": {"epochs": 2},
    # x < 0.6: no trial in the toy entry's bad region (from 0.7), so none is pruned
    "search_space": {
        **tune_conftest.TOY_STUDY["search_space"],
        "x": {"type": "float", "low": 0.0, "high": 0.6},
    },
}
TOY_METRIC = TOY_STUDY["objective"]["metric"]
TOY_TRIALS = 3


@dataclass
class Store:
    """What the folder's store holds: experiment ids by name, run ids by role, and what the pages
    must show (run names with their final ``probe_top1``)."""

    root: Path
    uri: str
    experiments: dict[str, str] = field(default_factory=dict)
    runs: dict[str, str] = field(default_factory=dict)
    probe_top1: dict[str, float] = field(default_factory=dict)  # SimCLR run name -> last probe_top1
    journal: Path | None = None
    study_name: str = ""


@dataclass
class Tracking:
    """The MLflow server's URL, the store it serves, and optuna-dashboard, started on the tune's journal
    as soon as it exists (its URL answers once the ``optuna_dashboard`` fixture has waited for it)."""

    url: str
    store: Store
    dashboard: subprocess.Popen
    dashboard_url: str


def inside(box: dict, frame: dict, tolerance: float = 1.0) -> bool:
    """Whether bounding box ``box`` lies within ``frame`` (both as Playwright gives them, in pixels)."""
    return (
        frame["x"] - tolerance <= box["x"]
        and box["x"] + box["width"] <= frame["x"] + frame["width"] + tolerance
        and frame["y"] - tolerance <= box["y"]
        and box["y"] + box["height"] <= frame["y"] + frame["height"] + tolerance
    )


def _experiment(client: MlflowClient, store: Store, name: str, description: str) -> str:
    store.experiments[name] = client.create_experiment(
        name, artifact_location=str(store.root / "artifacts" / name), tags={**KIND, NOTE: description}
    )
    return store.experiments[name]


def _run(
    client: MlflowClient,
    experiment_id: str,
    name: str,
    entry: str,
    *,
    start: int,
    params: dict | None = None,
    metrics: dict | None = None,
    curves: dict | None = None,
    tags: dict | None = None,
) -> str:
    """A FINISHED run as an entry point leaves it, with a description."""
    note = {NOTE: f"{entry} run {name} (browser test store)", **(tags or {})}
    return make_run(
        client,
        experiment_id,
        entry,
        name=name,
        start_ms=T0 + start * 1000,
        params=params,
        metrics=metrics,
        curves=curves,
        tags=note,
    )


def _fill_ssl(client: MlflowClient, store: Store) -> None:
    """Two SimCLR runs that differ in temperature, both registered; the better one is the champion. An
    ``ssl_study`` parent with its table, for the report."""
    import pandas as pd

    ssl = _experiment(client, store, "ssl", "Self-supervised pretraining and linear probes (browser tests)")
    versions = []
    for start, (temperature, curve) in enumerate(((0.5, (29.0, 35.5, 39.25)), (0.2, (31.5, 38.25, 42.75)))):
        name = f"simclr-resnet18-cifar10 temperature={temperature}"
        run_id = _run(
            client,
            ssl,
            name,
            "simclr",
            start=start,
            params={"dataset": "cifar10", "arch": "resnet18", "temperature": temperature, "epochs": 3},
            metrics={"best_probe_top1": max(curve), "pretrain_images": 50_000},
            curves={"probe_top1": list(enumerate(curve, 1)), "train_loss": [(1, 5.1), (2, 4.6), (3, 4.2)]},
        )
        store.runs[f"simclr_t{temperature}"] = run_id
        store.probe_top1[name] = curve[-1]
        versions.append(run_id)
    client.create_registered_model(
        "simclr-resnet18", description="SimCLR ResNet-18 encoder; alias champion = best probe_top1"
    )
    for run_id, name in zip(versions, store.probe_top1, strict=True):
        client.create_model_version(
            "simclr-resnet18",
            f"runs:/{run_id}/model",
            run_id=run_id,
            description=f"{name}: probe_top1 = {store.probe_top1[name]}",
        )
    client.set_registered_model_alias("simclr-resnet18", "champion", "2")

    rows = ssl_study_rows(47.25, {"imagenet": 33.33})
    study = _run(
        client, ssl, "ssl_study-resnet18-cifar10", "ssl_study", start=3, metrics={"test_top1": 48.75}
    )
    client.log_table(study, pd.DataFrame(rows), "ssl_study_table.json")
    store.runs["ssl_study"] = study


def _fill_vit_vs_cnn(client: MlflowClient, store: Store) -> None:
    """The parent with its two classify children; its figure is drawn by the code ``vit_vs_cnn`` uses."""
    from projects.classify.report import comparison_figure, metric_histories
    from projects.core.figures import svg_text

    exp = _experiment(client, store, "vit-vs-cnn", "Parameter-matched ViT vs ResNet-18 (browser tests)")
    parent = _run(
        client,
        exp,
        "vit_vs_cnn-cifar100",
        "vit_vs_cnn",
        start=10,
        params={"dataset": "cifar100", "epochs": 3},
    )
    store.runs["vit_vs_cnn"] = parent
    for model, params, best, speed in (
        ("resnet18", 11_220_132, 61.5, 5123.0),
        ("vit_d192_l25", 11_080_612, 55.75, 4321.0),
    ):
        store.runs[model] = _run(
            client,
            exp,
            f"classify-{model}-cifar100",
            "classify",
            start=11,
            params={"model": model, "num_parameters": params, "lr": 1e-3, "weight_decay": 0.05},
            metrics={"best_val_top1": best, "test_top1": best - 1, "test_top5": 85.0},
            curves={
                "val_top1": [(1, best - 20), (2, best - 5), (3, best)],
                "val_top5": [(1, 50), (2, 70), (3, 80)],
                "val_loss": [(1, 3.0), (2, 2.0), (3, 1.5)],
                "train_loss": [(1, 3.5), (2, 2.2), (3, 1.2)],
                "train_images_per_sec": [(1, speed), (2, speed), (3, speed)],
                "lr": [(step, 1e-3 * (1 - step / 30)) for step in range(30)],
            },
            tags={"mlflow.parentRunId": parent},
        )
    with _tracking_uri(store.uri):  # metric_histories reads through the default client
        histories = {m: metric_histories(store.runs[m]) for m in ("resnet18", "vit_d192_l25")}
    client.log_text(
        parent, svg_text(comparison_figure(histories, "ViT vs CNN on cifar100")), "vit_vs_cnn.svg"
    )


def _fill_nerf(client: MlflowClient, store: Store) -> None:
    from PIL import Image, ImageDraw

    exp = _experiment(client, store, "nerf", "NeRF reconstructions (browser tests)")
    run_id = _run(
        client,
        exp,
        "nerf-lego",
        "nerf",
        start=20,
        params={"scene": "lego"},
        metrics={"test_psnr": 27.48, "test_ssim": 0.9123, "test_lpips": 0.0871},
        tags={"nerf.scene": "lego"},
    )
    grid = store.root / "test_views_ground_truth_left_render_right.png"
    image = Image.new("RGB", (800, 200), (30, 120, 200))
    ImageDraw.Draw(image).rectangle((400, 0, 800, 200), fill=(220, 180, 40))
    image.save(grid)
    client.log_artifact(run_id, str(grid), "eval")
    store.runs["nerf"] = run_id


@contextlib.contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's default client on ``uri`` for the block (fixtures of this scope run outside a test's own
    store), restored after."""
    before = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(before)


def _real_tune(store: Store) -> None:
    """``tune`` of the toy entry point (2 epochs a trial) on a journal file: a parent run, one child run
    per trial, the study's SVG plots, and an Optuna study whose objective carries its metric's name."""
    from projects.core.config import from_dict
    from projects.tune import run as tune

    study_file = store.root / "toy.yaml"
    study_file.write_text(yaml.safe_dump(TOY_STUDY, sort_keys=False))
    store.journal = store.root / "optuna-journal.log"
    store.study_name = "toy"
    with _tracking_uri(store.uri), pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_EXPERIMENT_NAME", "tune-toy")
        mp.setenv("PROJECTS_CHECKPOINT_DIR", str(store.root / "checkpoints"))
        mp.chdir(store.root)
        tune.run(
            from_dict(
                tune.Config, {"study": str(study_file), "n_trials": TOY_TRIALS, "storage": str(store.journal)}
            )
        )
        (parent,) = mlflow.search_runs(
            search_all_experiments=True, filter_string=f"tags.`{ENTRY}` = 'tune'", output_format="list"
        )
    store.runs["tune"] = parent.info.run_id
    store.experiments["tune-toy"] = parent.info.experiment_id


def _start(command: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group: stopped as a whole
        )


@pytest.fixture(scope="package")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracking]:
    """``mlflow server`` on a loopback port over a SQLite store that this fixture fills while the server
    boots (the schema first, so that only one process creates it)."""
    root = tmp_path_factory.mktemp("browser-store")
    store = Store(root, f"sqlite:///{root / 'mlflow.db'}")
    with pytest.MonkeyPatch.context() as mp:
        # MLflow resolves a store's default artifact root ("./mlruns") from the cwd when the store is first
        # used and keeps it for the process: here, so that the experiments made later (tune's, the
        # report's) keep their files in this folder, not in the checkout.
        mp.chdir(root)
        client = MlflowClient(store.uri)
        client.search_experiments()  # creates the schema
    port = free_port()
    server = _start(
        [
            str(Path(PYTHON).with_name("mlflow")),
            "server",
            "--backend-store-uri",
            store.uri,
            "--default-artifact-root",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        root / "mlflow-server.log",
        # No GenAI job runners (several polling processes) and no usage reporting from a test.
        env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    url = f"http://127.0.0.1:{port}"
    dashboard = None
    try:
        _fill_ssl(client, store)
        _fill_vit_vs_cnn(client, store)
        _fill_nerf(client, store)
        _real_tune(store)
        # optuna-dashboard boots while the MLflow server finishes booting.
        dashboard_port = free_port()
        dashboard = _start(
            [str(Path(PYTHON).with_name("optuna-dashboard")), str(store.journal)]
            + ["--host", "127.0.0.1", "--port", str(dashboard_port)],
            root / "optuna-dashboard.log",
        )
        try:
            wait_healthy(url, server, timeout_s=180)
        except ConfigError as exc:
            pytest.fail(f"{exc}\n{(root / 'mlflow-server.log').read_text()[-3000:]}")
        yield Tracking(url, store, dashboard, f"http://127.0.0.1:{dashboard_port}")
    finally:
        for process in (server, dashboard):
            if process is not None:
                stop_process_group(process, timeout_s=20)


@pytest.fixture(scope="package")
def optuna_dashboard(tracking: Tracking) -> str:
    """``optuna-dashboard <journal> --host 127.0.0.1 --port P`` on the real tune's journal: its URL, once
    its API answers."""
    deadline = time.monotonic() + 120
    while True:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{tracking.dashboard_url}/api/studies", timeout=5):
                return tracking.dashboard_url
        if tracking.dashboard.poll() is not None or time.monotonic() > deadline:
            log = (tracking.store.root / "optuna-dashboard.log").read_text()[-3000:]
            pytest.fail(f"optuna-dashboard did not come up:\n{log}")
        time.sleep(0.3)


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    """Headless Chromium from the system (Debian's ``chromium``), one for the whole folder."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        pytest.fail("chromium missing: apt-get install chromium (.ci/apt-packages.txt)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


@pytest.fixture
def page(browser, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """A fresh browser profile (nothing remembered between tests) that reaches loopback only. MLflow's
    assistant panel starts closed, as after a person closed it once. A failing test leaves a screenshot
    of its page in its tmp_path (every test does, in $BROWSER_TEST_SCREENSHOTS when set)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())
    context.add_init_script(
        "try { localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');"
        " localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true'); } catch (e) {}"
    )
    page = context.new_page()
    # MLflow's one-time announcement of its new registry UI covers the models page: closed when it shows.
    promo = page.get_by_role("dialog").filter(has_text="new Model Registry UI")
    page.add_locator_handler(promo, lambda dialog: dialog.get_by_role("button", name="Close").click())
    try:
        yield page
    finally:
        failed = request.node.stash.get(FAILED, False)
        keep = os.environ.get(SCREENSHOTS_ENV)
        if failed or keep:
            name = re.sub(r"[^\w.-]+", "_", request.node.name)
            shot = Path(keep or tmp_path) / f"{name}.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(Exception):
                page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot of {'the failing' if failed else 'the last'} page: {shot} ({page.url})")
        context.close()
