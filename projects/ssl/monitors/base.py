"""What a monitor is: a per-epoch ``evaluate`` hook of the training loop that scores the encoder's frozen
features on the labelled validation split, never pretrained on, and times itself."""

from __future__ import annotations

import abc
import time
from collections.abc import Iterable
from typing import ClassVar

import torch
from torch import nn

from projects.core.evaluate import extract_features

Labelled = tuple[torch.Tensor, torch.Tensor]  # features (n, d) and their labels (n,)


class Monitor(abc.ABC):
    """Features of a labelled ``bank`` (training images) and ``queries`` (the validation split) under the
    current encoder, then :meth:`score`: a classifier fitted on the bank, scored on the queries.

    Returns ``{metric: value, "monitor_time_s": seconds}``; the seconds (features + fit) are logged every
    epoch so that the monitor's share of the epoch stays in view.
    """

    name: ClassVar[str]
    metric: ClassVar[str]  # the MLflow metric: what best.pt, pruning and champion follow

    def __init__(self, bank: Iterable, queries: Iterable, device: torch.device, *, knn_k: int = 20):
        self.bank, self.queries, self.device, self.knn_k = bank, queries, device, knn_k

    @abc.abstractmethod
    def score(self, bank: Labelled, queries: Labelled) -> float:
        """Top-1 (%) on the queries of a classifier that saw only the bank's features and labels."""

    def __call__(self, model: nn.Module) -> dict[str, float]:
        start = time.perf_counter()
        encoder = getattr(model, "encoder", model)
        bank = extract_features(encoder, self.bank, self.device)
        queries = extract_features(encoder, self.queries, self.device)
        value = self.score(bank, queries)
        return {self.metric: value, "monitor_time_s": time.perf_counter() - start}
