"""The linear probe as a monitor: a multinomial logistic regression on standardised frozen features of the
bank, fitted full-batch with L-BFGS every epoch, scored on the validation split. It is the offline probe
(the linear classification protocol) at a smaller scale, so it ranks encoders as the probe does."""

from __future__ import annotations

from projects.core.evaluate import logistic_probe_accuracy
from projects.ssl.monitors.base import Labelled, Monitor


class ProbeMonitor(Monitor):
    name = "probe"
    metric = "probe_top1"

    def score(self, bank: Labelled, queries: Labelled) -> float:
        return logistic_probe_accuracy(*bank, *queries)
