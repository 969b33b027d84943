"""``ns-eval`` on the held-out views: PSNR/SSIM/LPIPS (+ stds) and rays/s as metrics, its JSON and a few
test views beside their ground truth as artifacts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import mlflow
import numpy as np
from PIL import Image

# ns-eval result key -> metric name (the rest keep their own names, prefixed "test_").
RENAMES = {"num_rays_per_sec": "rays_per_sec", "num_rays_per_sec_std": "rays_per_sec_std"}


def run_ns_eval(config_yml: Path, output_json: Path, render_dir: Path) -> dict[str, float]:
    """nerfstudio's own ``ns-eval`` (ComputePSNR), in-process so the LPIPS/loading fixes apply."""
    from nerfstudio.data.datamanagers.parallel_datamanager import ParallelDataManager
    from nerfstudio.scripts.eval import ComputePSNR

    # ns-eval renders the held-out views only; nerfacto's datamanager would still spawn a training-ray
    # worker process (a fresh interpreter importing torch and nerfstudio) that eval never reads from.
    setup_train = ParallelDataManager.setup_train
    ParallelDataManager.setup_train = lambda self: None  # type: ignore[method-assign]
    try:
        ComputePSNR(load_config=config_yml, output_path=output_json, render_output_path=render_dir).main()
    finally:
        ParallelDataManager.setup_train = setup_train  # type: ignore[method-assign]
    return json.loads(output_json.read_text())["results"]


def ns_eval_metrics(results: dict[str, float]) -> dict[str, float]:
    """MLflow metrics from ns-eval's results; a NaN (e.g. the std of one view) is left out, not logged."""
    return {
        f"test_{RENAMES.get(key, key)}": float(value)
        for key, value in results.items()
        if isinstance(value, (int, float)) and math.isfinite(value)
    }


def comparison_grid(render_dir: Path, views: int) -> Image.Image | None:
    """ns-eval saves each test view as ``eval_img_NNNN.png`` = [ground truth | render]; stack a few."""
    paths = sorted(render_dir.glob("eval_img_*.png"))
    if not paths:
        return None
    picks = [paths[i] for i in np.linspace(0, len(paths) - 1, min(views, len(paths))).round().astype(int)]
    rows = [np.asarray(Image.open(p).convert("RGB")) for p in dict.fromkeys(picks)]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return Image.fromarray(np.concatenate(rows, axis=0))


def evaluate(config_yml: Path, out_dir: Path, views: int = 4) -> dict[str, float]:
    """Run ns-eval, log its metrics and artifacts in the active run; return the metrics."""
    output_json = out_dir / "eval.json"
    render_dir = out_dir / "eval_renders"
    metrics = ns_eval_metrics(run_ns_eval(config_yml, output_json, render_dir))
    mlflow.log_metrics(metrics)
    mlflow.log_artifact(str(output_json), "eval")
    grid = comparison_grid(render_dir, views)
    if grid is not None:
        mlflow.log_image(grid, "eval/test_views_ground_truth_left_render_right.png")
    return metrics
