"""The one vocabulary of MLflow metric names: every entry point logs the same name for the same quantity.

Steps: an ``epoch`` metric is logged once per epoch with step = the number of epochs completed (1, 2, ...),
so curves of runs with different batch sizes overlay; a ``step`` metric with step = the optimizer step
(1, 2, ... across epochs); a ``final`` metric once, at step 0, when the run ends. Accuracies (``*_top1``,
``*_top5``) are percentages, 0-100. A test checks that every metric a run logs is in this table, and the README's table is
generated from it (``python -m projects.core.metrics``).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricDef:
    name: str  # may end in ``<...>``: a family, e.g. ``time/<stage>_s``
    when: str  # "epoch", "step" or "final"
    meaning: str
    entry_points: str

    def matches(self, key: str) -> bool:
        pattern = re.escape(self.name)
        pattern = re.sub(r"\\<[^>]*\\>|<[^>]*>", r"[A-Za-z0-9_.]+", pattern)
        return re.fullmatch(pattern, key) is not None


TRAINING = "simclr, byol, mocov3, classify, supervised, finetune, linear_eval"
CLASSIFIERS = "classify, supervised, finetune, linear_eval"
SSL = "simclr, byol, mocov3"
PARENTS = "vit_vs_cnn, ssl_study, tune"

VOCABULARY: tuple[MetricDef, ...] = (
    MetricDef("train_loss", "epoch", "mean training loss over the epoch's steps (all ranks)", TRAINING),
    MetricDef(
        "train_loss_step", "step", "training loss, mean over the last logged steps", f"{TRAINING}, nerf"
    ),
    MetricDef("lr", "step", "learning rate of the first parameter group", TRAINING),
    MetricDef("train_images_per_sec", "epoch", "training images per second, all ranks", TRAINING),
    MetricDef(
        "train_features_per_sec",
        "epoch",
        "cached feature vectors per second (the probe's head)",
        "linear_eval",
    ),
    MetricDef("epoch_time_s", "epoch", "seconds of the epoch's training steps", TRAINING),
    MetricDef("val_loss", "epoch", "loss on the held-out validation split", CLASSIFIERS),
    MetricDef("val_top1", "epoch", "top-1 accuracy on the validation split", CLASSIFIERS),
    MetricDef("val_top5", "epoch", "top-5 accuracy on the validation split", CLASSIFIERS),
    MetricDef(
        "probe_top1",
        "epoch",
        "linear-probe top-1 of the frozen encoder on the validation split (eval_metric=probe_top1, the default)",
        SSL,
    ),
    MetricDef(
        "knn_top1", "epoch", "kNN (knn_k=20, cosine) top-1 of the encoder on the validation split", SSL
    ),
    MetricDef("monitor_time_s", "epoch", "seconds of the epoch's monitor pass (features + fit)", SSL),
    MetricDef("best_val_top1", "final", "best val_top1 over the epochs (the kept checkpoint)", CLASSIFIERS),
    MetricDef("best_probe_top1", "final", "best probe_top1 over the epochs (the kept checkpoint)", SSL),
    MetricDef("best_knn_top1", "final", "best knn_top1 over the epochs (eval_metric=knn_top1)", SSL),
    MetricDef("test_top1", "final", "top-1 accuracy on the test split", f"{CLASSIFIERS}, {PARENTS}"),
    MetricDef("test_top5", "final", "top-5 accuracy on the test split", f"{CLASSIFIERS}, {PARENTS}"),
    MetricDef("test_loss", "final", "loss on the test split", CLASSIFIERS),
    MetricDef("train_time_s", "final", "seconds of the whole fit", TRAINING),
    MetricDef("feature_time_s", "final", "seconds to compute the frozen encoder's features", "linear_eval"),
    MetricDef("pretrain_images", "final", "images in the pretraining set", SSL),
    MetricDef("test_psnr", "final", "PSNR (dB) of held-out views", "nerf"),
    MetricDef("test_ssim", "final", "SSIM of held-out views", "nerf"),
    MetricDef("test_lpips", "final", "LPIPS (AlexNet) of held-out views, lower is better", "nerf"),
    MetricDef("test_<ns-eval key>", "final", "ns-eval's other figures (e.g. test_fps)", "nerf"),
    MetricDef("time/<stage>_s", "final", "seconds of a NeRF stage (poses, train, eval, render, ...)", "nerf"),
    MetricDef("data/<count>", "final", "frames given / extracted / registered by COLMAP", "nerf"),
    MetricDef("train_loss_step/<term>", "step", "a term of nerfacto's loss, per iteration", "nerf"),
    MetricDef("lr/<param group>", "step", "learning rate of a nerfacto parameter group", "nerf"),
    MetricDef("train_rays_per_sec", "step", "training rays per second", "nerf"),
    MetricDef("train/<metric>", "step", "nerfstudio's training metrics (psnr, iteration time)", "nerf"),
    MetricDef("val/<metric>", "step", "nerfstudio's evaluation during training (its own schedule)", "nerf"),
    MetricDef("gpu_memory_mb", "step", "GPU memory in use", "nerf"),
    MetricDef("video/seconds", "final", "length of the rendered video", "nerf"),
    MetricDef("pointcloud/num_points", "final", "points of the exported point cloud", "nerf"),
    MetricDef(
        "<child>/<metric>",
        "final",
        "a child's figure in a parent run (``vit/test_top1``, ``labels_0.1/test_top1``)",
        PARENTS,
    ),
    MetricDef(
        "trials_<state>", "final", "trials this tune invocation ran / complete / pruned / failed", "tune"
    ),
    MetricDef("epochs_trained", "final", "epochs trained over this invocation's trials", "tune"),
    MetricDef("study_trials", "final", "trials in the whole study", "tune"),
    MetricDef("best_trial", "final", "number of the study's best trial", "tune"),
)

# Parents also log the study's objective under its own name (e.g. ``probe_top1`` of tune's best trial).
PARENT_HEADLINES = (
    "test_top1",
    "test_top5",
    "val_top1",
    "probe_top1",
    "knn_top1",
    "best_val_top1",
    "best_probe_top1",
    "best_knn_top1",
)


def lookup(key: str) -> MetricDef | None:
    return next((m for m in VOCABULARY if m.matches(key)), None)


def markdown_table() -> str:
    lines = ["| metric | logged | meaning | entry points |", "|---|---|---|---|"]
    for m in VOCABULARY:
        lines.append(f"| `{m.name}` | {m.when} | {m.meaning} | {m.entry_points} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown_table() + "\n")
