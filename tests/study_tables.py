"""Rows of ``ssl_study_table.json`` in the shape the ``ssl_study`` entry point logs, for tests that fill a
store or draw the study's figure without running the study."""

from __future__ import annotations

from projects.ssl.figures import BASELINE_NAMES


def ssl_study_rows(top: float, baselines: dict[str, float]) -> list[dict]:
    """SimCLR and BYOL (BYOL 1.5 points better) pretrained on 10 % and 100 % of CIFAR-10, probed with 1 %
    and 100 % of the labels; ``top`` is SimCLR's probe top-1 with everything. ``baselines``: kind ->
    probe top-1 (the same at both label fractions)."""
    rows = []
    for method, bonus in (("simclr", 0.0), ("byol", 1.5)):
        for fraction, images in ((0.1, 5000), (1.0, 50000)):
            for labels in (0.01, 1.0):
                rows.append(
                    {
                        "kind": "ssl",
                        "name": f"{method}-cifar10-{fraction:g}",
                        "method": method,
                        "pretrain_dataset": "cifar10",
                        "fraction": fraction,
                        "pretrain_images": images,
                        "monitor": "probe_top1",
                        "monitor_value": 40.0 + bonus,
                        "label_fraction": labels,
                        "test_top1": top - 20 * (1 - labels) - 5 * (1 - fraction) + bonus,
                        "test_top5": 80.0,
                    }
                )
    for kind, value in baselines.items():
        for labels in (0.01, 1.0):
            rows.append(
                {
                    "kind": kind,
                    "name": BASELINE_NAMES[kind],
                    "label_fraction": labels,
                    "test_top1": value,
                    "test_top5": 60.0,
                }
            )
    return rows
