"""What the report shows, read from MLflow: each study's newest finished runs, found by their
``projects.entry_point`` tag (so it does not matter which experiment holds them), turned into sections
of tables, inline SVG figures and small images.

Every section names the runs it came from, so a reader can open them in the MLflow UI. A section with
nothing to show says so ("no runs yet") instead of being left out.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import Any

import mlflow
from mlflow.entities import Run, ViewType
from mlflow.tracking import MlflowClient

from projects.core.errors import ConfigError
from projects.core.figures import svg_inline
from projects.core.tracking import ENTRY_POINT_TAG
from projects.ssl.figures import BASELINE_NAMES

log = logging.getLogger(__name__)

FRAME_WIDTH = 480  # px: the NeRF frames are thumbnails, the page stays small
NO_RUNS = "no runs yet"


@dataclass
class RunRef:
    """A run a section was built from: what it is, and where to find it."""

    run_id: str
    experiment_id: str
    name: str
    role: str


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""


@dataclass
class Image:
    caption: str
    mime: str
    data: bytes


@dataclass
class Section:
    key: str
    title: str
    runs: list[RunRef] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)  # inline <svg> elements
    images: list[Image] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def ref(run: Run, role: str) -> RunRef:
    return RunRef(run.info.run_id, run.info.experiment_id, run.info.run_name or "", role)


def clean(value: Any) -> Any:
    """A table cell as Python: NaN (a missing value in a pandas-written table) -> None."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def experiment_ids(client: MlflowClient, names: list[str]) -> list[str]:
    """The ids of the named experiments (all active ones when ``names`` is empty); an unknown name is a
    ``ConfigError``."""
    if names:
        ids = []
        for name in names:
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                known = sorted(e.name for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY))
                raise ConfigError(f"experiment {name!r} does not exist; known: {', '.join(known)}")
            ids.append(experiment.experiment_id)
        return ids
    return [e.experiment_id for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY)]


def search(ids: list[str], filter_string: str) -> list[Run]:
    """Every run matching the filter in these experiments, newest first (MLflow pages through them)."""
    return mlflow.search_runs(
        experiment_ids=ids,
        filter_string=filter_string,
        order_by=["attributes.start_time DESC"],
        output_format="list",
    )


def finished(client: MlflowClient, ids: list[str], entry_point: str) -> list[Run]:
    """The FINISHED runs of one entry point, newest first."""
    return search(ids, f"tags.`{ENTRY_POINT_TAG}` = '{entry_point}' and attributes.status = 'FINISHED'")


def download(client: MlflowClient, run_id: str, path: str, workdir: Path) -> Path:
    dst = workdir / run_id
    dst.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, path, str(dst)))


def load_table(client: MlflowClient, run_id: str, path: str, workdir: Path) -> list[dict[str, Any]]:
    """An MLflow table artifact (``{"columns": [...], "data": [[...]]}``) as rows."""
    table = json.loads(download(client, run_id, path, workdir).read_text())
    return [
        {k: clean(v) for k, v in zip(table["columns"], row, strict=True)} for row in table.get("data", [])
    ]


def _labels(fraction: Any) -> str:
    return f"{100 * float(fraction):g}%"


# --- SSL -----------------------------------------------------------------------------------------------


def _pretraining_run(client: MlflowClient, encoder: str) -> Run | None:
    """The run that produced a probed encoder: ``models:/name@alias`` or ``models:/name/version`` (the
    version's run), ``runs:/<id>/...``, or a checkpoint path ``.../<run id>/last.pt``."""
    try:
        if encoder.startswith("models:/"):
            name, _, rest = encoder.removeprefix("models:/").partition("@")
            if rest:
                run_id = client.get_model_version_by_alias(name, rest).run_id
            else:
                name, _, version = encoder.removeprefix("models:/").rpartition("/")
                run_id = client.get_model_version(name, version).run_id
        elif encoder.startswith("runs:/"):
            run_id = encoder.removeprefix("runs:/").split("/")[0]
        else:
            run_id = PurePosixPath(encoder).parent.name
        return client.get_run(run_id) if run_id else None
    except Exception:  # an encoder from elsewhere (a file, another store): shown without its data size
        return None


def ssl_rows_from_probes(client: MlflowClient, ids: list[str]) -> tuple[list[dict[str, Any]], list[Run]]:
    """Rows in ``ssl_study_table.json``'s shape from standalone ``linear_eval`` (and ``supervised``) runs:
    the newest per encoder, dataset and label fraction; the pretraining data size from the encoder's run."""
    rows, used, seen = [], [], set()
    for run in finished(client, ids, "linear_eval"):
        p, m = run.data.params, run.data.metrics
        encoder = p.get("encoder", "")
        key = (encoder, p.get("dataset"), p.get("label_fraction"))
        if key in seen or "test_top1" not in m:
            continue
        seen.add(key)
        used.append(run)
        common = {
            "label_fraction": float(p.get("label_fraction", 1.0)),
            "test_top1": m["test_top1"],
            "test_top5": m.get("test_top5"),
        }
        if encoder in BASELINE_NAMES:
            rows.append({"kind": encoder, "name": BASELINE_NAMES[encoder], **common})
            continue
        pre = _pretraining_run(client, encoder)
        if pre is None or "pretrain_images" not in pre.data.metrics:
            rows.append({"kind": "unknown", "name": encoder, **common})
            continue
        method = pre.data.tags.get(ENTRY_POINT_TAG, "?")
        rows.append(
            {
                "kind": "ssl",
                "name": f"{method}-{pre.data.params.get('dataset')}-{pre.data.params.get('fraction')}",
                "method": method,
                "pretrain_dataset": pre.data.params.get("dataset"),
                "fraction": float(pre.data.params.get("fraction", 1.0)),
                "pretrain_images": int(pre.data.metrics["pretrain_images"]),
                **_monitor_of(pre),
                **common,
            }
        )
    for run in finished(client, ids, "supervised"):
        p, m = run.data.params, run.data.metrics
        key = ("supervised", p.get("dataset"), p.get("label_fraction"))
        if key in seen or "test_top1" not in m:
            continue
        seen.add(key)
        used.append(run)
        rows.append(
            {
                "kind": "supervised",
                "name": BASELINE_NAMES["supervised"],
                "label_fraction": float(p.get("label_fraction", 1.0)),
                "test_top1": m["test_top1"],
                "test_top5": m.get("test_top5"),
            }
        )
    return rows, used


def _monitor_of(pre: Any) -> dict[str, Any]:
    """The pretraining run's monitor metric and its final value (runs from before ``eval_metric``
    existed logged ``knn_top1``)."""
    metric = pre.data.params.get("eval_metric", "knn_top1")
    return {"monitor": metric, "monitor_value": pre.data.metrics.get(metric)}


def ssl_table(rows: list[dict[str, Any]]) -> Table:
    ordered = sorted(
        rows,
        key=lambda r: (
            float(r["label_fraction"]),
            r["kind"] != "ssl",
            str(r.get("method") or r.get("name")),
            r.get("pretrain_images") or 0,
        ),
    )
    return Table(
        [
            "labels",
            "encoder",
            "pretraining data",
            "pretraining images",
            "monitor, final (%)",
            "probe test top-1 (%)",
            "probe test top-5 (%)",
        ],
        [
            [
                _labels(r["label_fraction"]),
                r.get("method") if r["kind"] == "ssl" else r.get("name"),
                f"{r['pretrain_dataset']} ({_labels(r['fraction'])})" if r["kind"] == "ssl" else None,
                int(r["pretrain_images"]) if r.get("pretrain_images") is not None else None,
                f"{r['monitor']} {r['monitor_value']:.1f}" if r.get("monitor_value") is not None else None,
                r.get("test_top1"),
                r.get("test_top5"),
            ]
            for r in ordered
        ],
        "linear probe on frozen features; baselines: same probe on ImageNet/random features, and a "
        "ResNet-18 trained from scratch on the same labels",
    )


def ssl_section(client: MlflowClient, ids: list[str], workdir: Path) -> Section:
    from projects.ssl.figures import figure

    section = Section("ssl", "Self-supervised learning: linear probe vs pretraining data size")
    studies = finished(client, ids, "ssl_study")
    if studies:
        study = studies[0]
        rows = load_table(client, study.info.run_id, "ssl_study_table.json", workdir)
        section.runs.append(ref(study, "ssl_study"))
        section.notes.append("from the newest finished ssl_study run")
    else:
        rows, probes = ssl_rows_from_probes(client, ids)
        section.runs.extend(ref(r, r.data.tags.get(ENTRY_POINT_TAG, "")) for r in probes)
        if rows:
            section.notes.append("no finished ssl_study run: from standalone linear_eval / supervised runs")
    if not rows:
        section.notes.append(NO_RUNS)
        return section
    section.tables.append(ssl_table(rows))
    plotted = [r for r in rows if r["kind"] in ("ssl", *BASELINE_NAMES)]
    if plotted:
        section.figures.append(svg_inline(figure(plotted)))
    return section


# --- ViT vs CNN ----------------------------------------------------------------------------------------


def vit_vs_cnn_section(client: MlflowClient, ids: list[str], workdir: Path) -> Section:
    from projects.classify.report import child_runs, comparison_figure, metric_histories, summary_row

    section = Section("vit_vs_cnn", "Transformer vs CNN")
    parents = finished(client, ids, "vit_vs_cnn")
    if not parents:
        section.notes.append(NO_RUNS)
        return section
    parent = parents[0]
    section.runs.append(ref(parent, "vit_vs_cnn"))
    children = [c for c in child_runs(parent.info.run_id) if "model" in c.data.params]
    section.runs.extend(ref(c, c.data.params["model"]) for c in children)
    histories = {c.data.params["model"]: metric_histories(c.info.run_id) for c in children}
    rows = []
    for child in children:
        summary = summary_row(child, histories[child.data.params["model"]])
        rows.append(
            [
                summary["model"],
                summary["num_parameters"] or None,
                summary["best_val_top1"],
                summary["test_top1"],
                summary["test_top5"],
                summary["train_images_per_sec"],
                summary["epochs"],
            ]
        )
    section.tables.append(
        Table(
            [
                "model",
                "parameters",
                "best val top-1 (%)",
                "test top-1 (%)",
                "test top-5 (%)",
                "train images/s",
                "epochs",
            ],
            rows,
            "same recipe and seed; images/s = mean training throughput per epoch",
        )
    )
    p = parent.data.params
    title = (
        f"ViT vs CNN on {p.get('dataset', '?')} (seed {p.get('seed', '?')}, {p.get('epochs', '?')} epochs)"
    )
    if histories:
        section.figures.append(svg_inline(comparison_figure(histories, title)))
    return section


# --- NeRF ----------------------------------------------------------------------------------------------


def _jpeg(image: Any, width: int = FRAME_WIDTH) -> bytes:
    """A PIL image as a JPEG at most ``width`` px wide (and at most 1.5x as tall)."""
    image = image.convert("RGB")
    image.thumbnail((width, int(width * 1.5)))
    buffer = BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def video_frame(path: Path, width: int = FRAME_WIDTH) -> bytes | None:
    """The middle frame of a video as a JPEG at most ``width`` px wide: ffmpeg if on PATH, else PyAV;
    None if neither can read it."""
    ffmpeg, ffprobe = shutil.which("ffmpeg"), shutil.which("ffprobe")
    if ffmpeg:
        middle = 0.0
        if ffprobe:
            probe = subprocess.run(
                [ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
                capture_output=True,
                text=True,
            )
            try:
                middle = float(probe.stdout.strip()) / 2
            except ValueError:
                middle = 0.0
        grab = subprocess.run(
            [ffmpeg, "-v", "error", "-ss", f"{middle:.3f}", "-i", str(path), "-frames:v", "1"]
            + ["-vf", f"scale='min({width},iw)':-2", "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "4", "-"],
            capture_output=True,
        )
        if grab.returncode == 0 and grab.stdout:
            return grab.stdout
        log.warning(
            "ffmpeg could not read a frame of %s: %s", path, grab.stderr.decode(errors="replace")[-300:]
        )
    try:
        import av

        with av.open(str(path)) as container:
            frames = [frame.to_image() for frame in container.decode(video=0)]
        return _jpeg(frames[len(frames) // 2], width) if frames else None
    except Exception as exc:
        log.warning("no frame from %s: %s", path, exc)
        return None


def _first_artifact(client: MlflowClient, run_id: str, folder: str, suffix: str) -> str | None:
    try:
        paths = sorted(f.path for f in client.list_artifacts(run_id, folder) if f.path.endswith(suffix))
    except Exception:
        return None
    return paths[0] if paths else None


def nerf_picture(client: MlflowClient, run_id: str, workdir: Path) -> Image | None:
    """One frame of the run's rendered video, or its evaluation image when it has no video."""
    video = _first_artifact(client, run_id, "video", ".mp4")
    if video:
        frame = video_frame(download(client, run_id, video, workdir))
        if frame:
            return Image(f"middle frame of {video}", "image/jpeg", frame)
    still = _first_artifact(client, run_id, "eval", ".png")
    if still:
        from PIL import Image as PILImage

        with PILImage.open(download(client, run_id, still, workdir)) as image:
            return Image(f"{still} (ground truth left, render right)", "image/jpeg", _jpeg(image))
    return None


def scene_of(run: Run) -> str:
    tags, params = run.data.tags, run.data.params
    return tags.get("nerf.scene") or params.get("scene") or Path(params.get("data", "?")).stem or "?"


def nerf_section(client: MlflowClient, ids: list[str], workdir: Path) -> Section:
    section = Section("nerf", "NeRF: per scene")
    newest: dict[str, Run] = {}
    for run in finished(client, ids, "nerf"):
        newest.setdefault(scene_of(run), run)
    if not newest:
        section.notes.append(NO_RUNS)
        return section
    rows = []
    for scene, run in sorted(newest.items()):
        m = run.data.metrics
        section.runs.append(ref(run, scene))
        rows.append([scene, m.get("test_psnr"), m.get("test_ssim"), m.get("test_lpips"), run.info.run_id])
        picture = nerf_picture(client, run.info.run_id, workdir)
        if picture:
            picture.caption = f"{scene}: {picture.caption}"
            section.images.append(picture)
    section.tables.append(
        Table(
            ["scene", "test PSNR (dB)", "test SSIM", "test LPIPS", "run"],
            rows,
            "held-out test views; higher PSNR/SSIM and lower LPIPS are better",
        )
    )
    return section


# --- Tune ----------------------------------------------------------------------------------------------


def _study_spec(client: MlflowClient, run_id: str, workdir: Path) -> dict[str, Any]:
    import yaml

    try:
        return yaml.safe_load(download(client, run_id, "study.yaml", workdir).read_text()) or {}
    except Exception:
        return {}


def _short(text: str) -> str:
    """A param as text, a number in it with 4 significant digits (a sampled ``lr=0.000329288...``)."""
    try:
        return f"{float(text):.4g}"
    except ValueError:
        return text


def tune_section(client: MlflowClient, ids: list[str], workdir: Path) -> Section:
    section = Section("tune", "Hyperparameter search: best trial of each study")
    newest: dict[str, Run] = {}
    for run in finished(client, ids, "tune"):
        newest.setdefault(run.data.tags.get("optuna.study_name", "?"), run)
    if not newest:
        section.notes.append(NO_RUNS)
        return section
    rows = []
    for study, run in sorted(newest.items()):
        spec = _study_spec(client, run.info.run_id, workdir)
        metric = spec.get("metric") or ""
        m, p = run.data.metrics, run.data.params
        value = m.get(metric)
        best = ", ".join(
            f"{k.removeprefix('best.')}={_short(v)}" for k, v in sorted(p.items()) if k.startswith("best.")
        )
        best_trial = m.get("best_trial")
        section.runs.append(ref(run, study))
        rows.append(
            [
                study,
                spec.get("entry_point", ""),
                f"{metric} ({spec.get('direction', '?')})" if metric else "?",
                value,
                int(best_trial) if best_trial is not None else None,
                best,
                m.get("test_top1"),
                int(m["study_trials"]) if "study_trials" in m else None,
                run.data.tags.get("optuna.best_run_id") or None,
            ]
        )
    section.tables.append(
        Table(
            [
                "study",
                "entry point",
                "objective",
                "best value",
                "best trial",
                "best parameters",
                "best trial's test top-1 (%)",
                "trials",
                "best trial's run",
            ],
            rows,
            "from each study's newest finished tune run (the study as a whole, all invocations)",
        )
    )
    return section


SECTIONS: tuple[Callable[[MlflowClient, list[str], Path], Section], ...] = (
    ssl_section,
    vit_vs_cnn_section,
    nerf_section,
    tune_section,
)


def collect(client: MlflowClient, ids: list[str]) -> list[Section]:
    """Every section, in page order. A section that cannot be built (an artifact missing or malformed)
    says why on the page and in the log; the others are still built."""
    sections = []
    with tempfile.TemporaryDirectory(prefix="projects-report-") as tmp:
        for build in SECTIONS:
            try:
                sections.append(build(client, ids, Path(tmp)))
            except Exception as exc:
                log.exception("report section %s failed", build.__name__)
                title = build.__name__.removesuffix("_section")
                sections.append(
                    Section(title, title, notes=[f"could not be built: {type(exc).__name__}: {exc}"])
                )
    return sections
