"""Evaluation shared by the studies: top-k accuracy, validation pass, features, kNN accuracy, linear probe."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

# The linear probe's L2 penalty on standardised features (mean-loss form), chosen on validation images:
# README, "Which number to select on".
PROBE_WEIGHT_DECAY = 0.03


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> list[int]:
    """Number of samples whose label is among the top-k logits, for each k (capped at #classes)."""
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices
    hits = top.eq(labels.view(-1, 1))
    return [int(hits[:, : min(k, kmax)].any(dim=1).sum()) for k in ks]


@torch.no_grad()
def validate(
    model: nn.Module, loader: Iterable, device: torch.device, prefix: str = "val"
) -> dict[str, float]:
    """Mean cross-entropy, top-1 and top-5 accuracy (in %) of a classifier over ``loader``."""
    model.eval()
    loss_sum, n, correct1, correct5 = 0.0, 0, 0, 0
    for images, labels in loader:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        logits = model(images).float()
        loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
        c1, c5 = topk_correct(logits, labels)
        correct1, correct5, n = correct1 + c1, correct5 + c5, n + len(labels)
    n = max(n, 1)
    return {
        f"{prefix}_loss": loss_sum / n,
        f"{prefix}_top1": 100.0 * correct1 / n,
        f"{prefix}_top5": 100.0 * correct5 / n,
    }


@torch.no_grad()
def extract_features(
    encoder: nn.Module, loader: Iterable, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder outputs (float32, on CPU) and labels for a whole loader."""
    encoder.eval()
    feats, labels = [], []
    for images, y in loader:
        feats.append(encoder(images.to(device, non_blocking=True)).float().cpu())
        labels.append(torch.as_tensor(y).cpu())
    return torch.cat(feats), torch.cat(labels)


def knn_accuracy(
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    test_feats: torch.Tensor,
    test_labels: torch.Tensor,
    k: int = 20,
    temperature: float = 0.07,
    chunk: int = 1024,
) -> float:
    """Weighted kNN top-1 (%) on cosine similarity (Wu et al. 2018), the usual SSL monitor.

    Computed in float32 even under autocast: similarities rank neighbours, and the votes are float32.
    """
    with torch.autocast(train_feats.device.type, enabled=False):
        return _knn_accuracy(train_feats, train_labels, test_feats, test_labels, k, temperature, chunk)


def _knn_accuracy(train_feats, train_labels, test_feats, test_labels, k, temperature, chunk) -> float:
    train = F.normalize(train_feats.float(), dim=1)
    test = F.normalize(test_feats.float(), dim=1)
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    k = min(k, len(train))
    correct = 0
    for i in range(0, len(test), chunk):
        sim, idx = (test[i : i + chunk] @ train.T).topk(k, dim=1)
        weights = (sim / temperature).exp()
        votes = torch.zeros(len(idx), num_classes).scatter_add_(1, train_labels[idx], weights)
        correct += int((votes.argmax(1) == test_labels[i : i + chunk]).sum())
    return 100.0 * correct / max(1, len(test))


def logistic_probe_accuracy(
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    test_feats: torch.Tensor,
    test_labels: torch.Tensor,
    weight_decay: float = PROBE_WEIGHT_DECAY,
    max_iter: int = 100,
) -> float:
    """Top-1 (%) of a multinomial logistic regression on standardised features: the linear probe.

    The objective is the mean cross-entropy plus ``weight_decay / 2 * ||W||^2``, the bias not penalised
    (scikit-learn's ``LogisticRegression(C=1 / (weight_decay * n))``, the benchmarks' offline probe),
    fitted full-batch by L-BFGS with a strong-Wolfe line search, in float32 on the features' device.
    Features are standardised with the training features' mean and std, so one ``weight_decay`` suits
    every encoder's feature scale.
    """
    with torch.autocast(train_feats.device.type, enabled=False), torch.enable_grad():
        x = train_feats.float()
        mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
        x = (x - mean) / std
        y = train_labels.to(x.device).long()
        num_classes = int(max(train_labels.max(), test_labels.max())) + 1
        weight = torch.zeros(x.shape[1], num_classes, device=x.device, requires_grad=True)
        bias = torch.zeros(num_classes, device=x.device, requires_grad=True)
        optimizer = torch.optim.LBFGS(
            [weight, bias], max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe"
        )
        scale = weight_decay / 2

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(x @ weight + bias, y) + scale * weight.square().sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        with torch.no_grad():
            logits = ((test_feats.float().to(x.device) - mean) / std) @ weight + bias
            correct = (logits.argmax(1).cpu() == test_labels.cpu()).sum()
    return 100.0 * float(correct) / max(1, len(test_labels))
