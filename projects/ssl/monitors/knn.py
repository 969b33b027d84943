"""Weighted kNN top-1 on cosine similarity (Wu et al. 2018): the classic SSL monitor, ``knn_k`` neighbours,
temperature 0.07. Cheap, but on real photographs it ranked SimCLR recipes unlike the linear probe
(README, "Which number to select on")."""

from __future__ import annotations

from projects.core.evaluate import knn_accuracy
from projects.ssl.monitors.base import Labelled, Monitor


class KnnMonitor(Monitor):
    name = "knn"
    metric = "knn_top1"

    def score(self, bank: Labelled, queries: Labelled) -> float:
        return knn_accuracy(*bank, *queries, k=self.knn_k)
