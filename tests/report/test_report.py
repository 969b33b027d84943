"""``report``: one self-contained HTML page rebuilt from a store holding every study's runs, made
directly with MlflowClient in the shape the entry points leave them (tags, params, curves, artifacts)."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import time
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow.tracking import MlflowClient
from PIL import Image

from tests.run_shapes import make_run
from tests.study_tables import ssl_study_rows

ENTRY = "projects.entry_point"
MAX_PAGE = 1_500_000
T0 = int(time.time() * 1000) - 3_600_000


class Store:
    """Runs in the contract's shape; ``start`` orders them (newest = largest)."""

    def __init__(self, tmp: Path) -> None:
        self.client = MlflowClient()
        self.tmp = tmp
        self.experiments: dict[str, str] = {}

    def experiment(self, name: str) -> str:
        if name not in self.experiments:
            self.experiments[name] = self.client.create_experiment(name)
        return self.experiments[name]

    def run(
        self,
        experiment: str,
        entry: str,
        start: int,
        *,
        params: dict | None = None,
        metrics: dict | None = None,
        curves: dict | None = None,
        tags: dict | None = None,
        status: str = "FINISHED",
        name: str | None = None,
    ) -> str:
        return make_run(
            self.client,
            self.experiment(experiment),
            entry,
            name=name or f"{entry}-{start}",
            start_ms=T0 + start * 1000,
            params=params,
            metrics=metrics,
            curves=curves,
            tags=tags,
            status=status,
        )

    def artifact(self, run_id: str, local: Path, folder: str) -> None:
        self.client.log_artifact(run_id, str(local), folder)


def ssl_table(top: float):
    """``ssl_study_table.json`` as pandas writes it (missing fields of the baselines: NaN)."""
    import pandas as pd

    return pd.DataFrame(ssl_study_rows(top, {"imagenet": 33.33, "supervised": 21.5}))


def tiny_video(path: Path) -> Path:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.fail("ffmpeg missing: apt-get install ffmpeg (.ci/apt-packages.txt)")
    subprocess.run(
        [ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=10", "-t", "1"]
        + ["-pix_fmt", "yuv420p", str(path)],
        check=True,
    )
    return path


@pytest.fixture
def store(tmp_path: Path) -> dict[str, str]:
    """Every study's runs; returns the run ids the report must name."""
    s = Store(tmp_path)
    ids = {}
    # SSL: an older and a newer finished study (the newer counts), a newer one still running (ignored).
    for key, start, top, status in (
        ("ssl_old", 1, 11.11, "FINISHED"),
        ("ssl", 2, 47.25, "FINISHED"),
        ("ssl_running", 3, 99.0, "RUNNING"),
    ):
        ids[key] = s.run("ssl", "ssl_study", start, status=status)
        mlflow.log_table(ssl_table(top), "ssl_study_table.json", run_id=ids[key])
    # ViT vs CNN: a parent and its two classify children; 3 epochs, lr per optimizer step.
    ids["vit_vs_cnn"] = s.run(
        "vit-vs-cnn", "vit_vs_cnn", 4, params={"dataset": "cifar100", "seed": 0, "epochs": 3}
    )
    for model, params, best, test, speed in (
        ("resnet18", 11_220_132, 61.5, 60.25, 5123.0),
        ("vit_d192_l25", 11_080_612, 55.75, 54.5, 4321.0),
    ):
        ids[model] = s.run(
            "vit-vs-cnn",
            "classify",
            5,
            params={"model": model, "num_parameters": params, "lr": 1e-3, "weight_decay": 0.0},
            metrics={"best_val_top1": best, "test_top1": test, "test_top5": 85.0},
            curves={
                "val_top1": [(1, best - 20), (2, best - 5), (3, best)],
                "val_top5": [(1, 50), (2, 70), (3, 80)],
                "val_loss": [(1, 3.0), (2, 2.0), (3, 1.5)],
                "train_loss": [(1, 3.5), (2, 2.2), (3, 1.2)],
                "train_images_per_sec": [(1, speed), (2, speed), (3, speed)],
                "lr": [(step, 1e-3 * (1 - step / 30)) for step in range(30)],
            },
            tags={"mlflow.parentRunId": ids["vit_vs_cnn"]},
        )
    # NeRF: lego twice (the newer has a video), garden with only its evaluation image.
    ids["lego_old"] = s.run("nerf", "nerf", 6, metrics={"test_psnr": 20.01}, tags={"nerf.scene": "lego"})
    ids["lego"] = s.run(
        "nerf",
        "nerf",
        7,
        metrics={"test_psnr": 27.48, "test_ssim": 0.9123, "test_lpips": 0.0871},
        tags={"nerf.scene": "lego"},
    )
    s.artifact(ids["lego"], tiny_video(tmp_path / "orbit.mp4"), "video")
    ids["garden"] = s.run(
        "nerf",
        "nerf",
        8,
        metrics={"test_psnr": 22.5, "test_ssim": 0.7, "test_lpips": 0.2},
        tags={"nerf.scene": "garden"},
    )
    grid = tmp_path / "test_views_ground_truth_left_render_right.png"
    Image.new("RGB", (1200, 300), (30, 120, 200)).save(grid)
    s.artifact(ids["garden"], grid, "eval")
    # Tune: one study's parent run (the best trial's params, objective under its metric's name).
    ids["best_trial_run"] = s.run("ssl", "simclr", 9)
    ids["tune"] = s.run(
        "ssl",
        "tune",
        10,
        params={"best.lr": 0.003, "best.temperature": 0.2, "study": "simclr"},
        metrics={"knn_top1": 61.5, "best_trial": 7, "study_trials": 20, "trials_complete": 12},
        tags={"optuna.study_name": "simclr-lr", "optuna.best_run_id": ids["best_trial_run"]},
    )
    spec = {"name": "simclr", "entry_point": "simclr", "metric": "knn_top1", "direction": "maximize"}
    s.client.log_text(ids["tune"], yaml.safe_dump(spec), "study.yaml")
    return ids


def report_runs() -> list:
    return mlflow.search_runs(
        search_all_experiments=True, filter_string=f"tags.`{ENTRY}` = 'report'", output_format="list"
    )


def test_report_shows_every_study_from_its_newest_finished_runs(store, run_main, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    code, line = run_main("projects.report.run", ["--output", str(out)])
    assert code == 0, line
    page = out.read_text()
    assert len(page.encode()) < MAX_PAGE
    # Self-contained: nothing loaded or linked over the network, no script.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page) and "<script" not in page
    assert "plotly" not in page
    # Every run a section came from is named; the superseded and unfinished ones are not used.
    for key in ("ssl", "vit_vs_cnn", "resnet18", "vit_d192_l25", "lego", "garden", "tune", "best_trial_run"):
        assert store[key] in page, key
    for key in ("ssl_old", "ssl_running", "lego_old"):
        assert store[key] not in page, key
    sections = dict(re.findall(r'<section id="(\w+)">(.*?)</section>', page, re.S))
    assert set(sections) == {"ssl", "vit_vs_cnn", "nerf", "tune"}

    ssl = sections["ssl"]
    assert ssl.count("<svg") == 1 and "simclr on cifar10" in ssl and "imagenet features" in ssl
    assert "47.25" in ssl and "48.75" in ssl and "33.33" in ssl and "50,000" in ssl and "11.11" not in ssl

    vit = sections["vit_vs_cnn"]
    assert vit.count("<svg") == 1 and "resnet18" in vit and "vit_d192_l25" in vit
    for number in ("11,220,132", "11,080,612", "61.50", "60.25", "55.75", "54.50", "5,123", "4,321"):
        assert number in vit, number

    nerf = sections["nerf"]
    assert "27.48" in nerf and "0.9123" in nerf and "0.0871" in nerf and "20.01" not in nerf
    frames = re.findall(r'<img src="data:(image/\w+);base64,([^"]+)"', nerf)
    assert len(frames) == 2  # lego: a video frame; garden: its evaluation image
    for mime, data in frames:
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        assert mime == "image/jpeg" and image.width <= 480
    assert "middle frame of video/orbit.mp4" in nerf

    tune = sections["tune"]
    for text in ("simclr-lr", "knn_top1 (maximize)", "61.50", "lr=0.003", "temperature=0.2"):
        assert text in tune, text

    (report,) = report_runs()
    assert report.info.status == "FINISHED"
    files = {f.path for f in MlflowClient().list_artifacts(report.info.run_id)}
    assert "report.html" in files
    assert "report.html" in report.data.tags["mlflow.note.content"]
    assert report.data.params["output"] == str(out)


def test_empty_store_says_no_runs_yet(run_main, tmp_path: Path) -> None:
    code, line = run_main("projects.report.run", ["--output", str(tmp_path / "r.html")])
    assert code == 0, line
    page = (tmp_path / "r.html").read_text()
    assert page.count("no runs yet") == 4 and "<svg" not in page


def test_ssl_section_falls_back_to_standalone_probes(run_main, tmp_path: Path) -> None:
    s = Store(tmp_path)
    pre = s.run(
        "ssl", "byol", 1, params={"dataset": "cifar10", "fraction": 0.5}, metrics={"pretrain_images": 25000}
    )
    probe = s.run(
        "ssl",
        "linear_eval",
        2,
        params={
            "encoder": f"/somewhere/checkpoints/{pre}/last.pt",
            "dataset": "cifar100",
            "label_fraction": 0.1,
        },
        metrics={"test_top1": 37.75, "test_top5": 66.0},
    )
    random = s.run(
        "ssl",
        "linear_eval",
        3,
        params={"encoder": "random", "dataset": "cifar100", "label_fraction": 0.1},
        metrics={"test_top1": 8.25, "test_top5": 20.0},
    )
    code, line = run_main(
        "projects.report.run", ["--output", str(tmp_path / "r.html"), "--experiments", "ssl"]
    )
    assert code == 0, line
    page = (tmp_path / "r.html").read_text()
    ssl = re.search(r'<section id="ssl">(.*?)</section>', page, re.S).group(1)
    assert "<svg" in ssl and "byol on cifar10" in ssl and "random features" in ssl
    assert "25,000" in ssl and "37.75" in ssl and "8.25" in ssl and "10%" in ssl
    assert probe in ssl and random in ssl


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--output", "missing-folder/report.html"], "does not exist"),
        (["--output", "."], "is a folder"),
        (["--experiments", "nope"], "experiment 'nope' does not exist"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_report_run(run_main, argv, message) -> None:
    code, line = run_main("projects.report.run", argv)
    assert code == 2 and line.startswith("error:") and message in line, line
    assert not report_runs()
