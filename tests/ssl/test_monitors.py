"""The per-epoch monitors (``projects.ssl.monitors``): each separates features that carry the label from
features that do not; one probe: the monitor's probe agrees with scikit-learn's logistic regression (the
benchmarks' offline probe) and with the ``linear_eval`` entry point on the same features; the registry is
the folder."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from projects.core.evaluate import PROBE_WEIGHT_DECAY, logistic_probe_accuracy
from projects.ssl.monitors import get_monitor, monitor_for_metric, monitor_metrics, monitor_names


def labelled_features(n: int, informative: bool, seed: int = 0, d: int = 64, classes: int = 10):
    """Features of ``n`` images: class centres plus noise when ``informative``, else noise alone."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    centres = torch.randn(classes, d, generator=torch.Generator().manual_seed(99)) * 1.5
    noise = torch.randn(n, d, generator=g)
    return (noise + centres[labels] if informative else noise), labels


def test_the_registry_is_the_folder():
    assert monitor_names() == ("knn", "probe")
    assert monitor_metrics() == ("knn_top1", "probe_top1")
    assert monitor_for_metric("probe_top1") is get_monitor("probe")


@pytest.mark.parametrize("name", ["probe", "knn"])
def test_a_monitor_separates_features_that_carry_the_label_from_random_ones(name):
    monitor = get_monitor(name)(bank=None, queries=None, device=torch.device("cpu"), knn_k=20)
    scores = {}
    for informative in (True, False):
        bank, queries = (
            labelled_features(500, informative, seed=1),
            labelled_features(300, informative, seed=2),
        )
        scores[informative] = monitor.score(bank, queries)
    assert scores[True] > 90 and scores[False] < 20, scores  # 10 classes: chance is 10 %


def test_probe_agrees_with_scikit_learns_logistic_regression_within_one_point():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(1400) % 10
    centres = torch.randn(10, 128, generator=g) * 0.25  # overlapping classes: accuracy well below 100
    feats = torch.relu(torch.randn(1400, 128, generator=g) + centres[labels])
    train, test = slice(0, 1000), slice(1000, None)
    ours = logistic_probe_accuracy(feats[train], labels[train], feats[test], labels[test])
    scaler = StandardScaler().fit(feats[train].numpy())
    c = 1 / (PROBE_WEIGHT_DECAY * 1000)  # the same penalty in scikit-learn's sum-of-losses form
    clf = LogisticRegression(C=c, max_iter=2000).fit(
        scaler.transform(feats[train].numpy()), labels[train].numpy()
    )
    reference = 100 * float(
        (clf.predict(scaler.transform(feats[test].numpy())) == labels[test].numpy()).mean()
    )
    assert 30 < reference < 95 and abs(ours - reference) <= 1.0, (ours, reference)


def test_a_monitor_scores_the_methods_encoder_and_times_itself():
    bank_x, bank_y = labelled_features(200, True, seed=3, d=12)
    query_x, query_y = labelled_features(100, True, seed=4, d=12)

    class Method(nn.Module):  # what the trainer passes: a method whose ``encoder`` is judged
        def __init__(self):
            super().__init__()
            self.encoder = nn.Flatten()

    loaders = ([(bank_x.view(-1, 3, 2, 2), bank_y)], [(query_x.view(-1, 3, 2, 2), query_y)])
    logs = get_monitor("probe")(*loaders, device=torch.device("cpu"))(Method())
    assert set(logs) == {"probe_top1", "monitor_time_s"}
    assert logs["probe_top1"] > 90 and logs["monitor_time_s"] > 0


def test_linear_eval_gives_the_probe_monitors_figure_on_the_same_features():
    """``linear_eval`` trains its classifier by epochs (curves, checkpoints); its test top-1 must equal the
    full-batch probe's on the same frozen features within one point."""
    from projects.core.config import from_dict
    from projects.core.data import load_split, split_train_val
    from projects.core.datasets import get_dataset
    from projects.ssl import linear_eval
    from projects.ssl.encoders import load_encoder

    values = {"encoder": "random", "dataset": "synthetic", "stem": "imagenet", "num_workers": 0}
    cfg = from_dict(linear_eval.Config, {**values, "epochs": 100, "register": False})
    result = linear_eval.run(cfg)
    torch.manual_seed(cfg.seed)  # the encoder linear_eval drew
    encoder = load_encoder("random", cfg.arch, cfg.stem, "").eval()
    spec = get_dataset("synthetic")
    train, _ = split_train_val(load_split("synthetic", "train", "data", False), cfg.val_fraction, cfg.seed)
    test = load_split("synthetic", "test", "data", False)
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1)

    def features(images):
        with torch.no_grad():
            x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
            return encoder((x - mean) / std)

    probe = logistic_probe_accuracy(
        features(train.images),
        torch.from_numpy(train.labels),
        features(test.images),
        torch.from_numpy(test.labels),
    )
    assert 15 < probe < 95 and abs(result["test_top1"] - probe) <= 1.0, (result["test_top1"], probe)
