"""CutMix as the recipe runs it (timm's Mixup via core's create_mixup): label weights = pasted area."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from projects.classify.train import Config
from projects.core.classification import create_mixup


def test_recipe_defaults_to_cutmix_on_cifar100() -> None:
    cfg = Config()
    assert cfg.dataset == "cifar100" and cfg.cutmix_prob > 0 and cfg.cutmix_alpha == 1.0
    assert create_mixup(cfg, 100) is not None
    assert create_mixup(Config(cutmix_prob=0.0), 100) is None


@pytest.mark.parametrize("alpha", [0.3, 1.0, 4.0])
def test_mixed_label_weights_equal_the_pasted_pixel_fraction(alpha: float) -> None:
    mixup = create_mixup(Config(cutmix_prob=1.0, cutmix_alpha=alpha, label_smoothing=0.0), num_classes=10)
    np.random.seed(0)  # timm draws lambda and the box with numpy
    batch, size = 8, 32
    labels = torch.arange(batch)
    clipped = 0
    for _ in range(40):
        # Image i is filled with the constant i: every pixel tells which image it came from.
        original = torch.arange(batch, dtype=torch.float32).view(batch, 1, 1, 1).expand(batch, 3, size, size)
        mixed, targets = mixup(original.clone(), labels)
        partner = labels.flip(0)  # timm's batch mode pastes from the reversed batch
        pasted = (mixed[:, 0] == partner.view(-1, 1, 1).float()).float().mean(dim=(1, 2))
        assert torch.all((mixed[:, 0] == labels.view(-1, 1, 1)) | (mixed[:, 0] == partner.view(-1, 1, 1)))
        idx = torch.arange(batch)
        torch.testing.assert_close(targets[idx, labels], 1 - pasted)
        torch.testing.assert_close(targets[idx, partner], pasted)
        torch.testing.assert_close(targets.sum(dim=1), torch.ones(batch))
        # The box is one rectangle; a box at an edge was clipped, and lambda must follow the clip.
        rows = (mixed[0, 0] == partner[0]).any(dim=1).nonzero()
        cols = (mixed[0, 0] == partner[0]).any(dim=0).nonzero()
        if len(rows) and (
            rows.min() == 0 or rows.max() == size - 1 or cols.min() == 0 or cols.max() == size - 1
        ):
            clipped += 1
    assert clipped > 0  # the check above covered boxes clipped at the border


def test_mixup_option_mixes_labels_by_its_weight() -> None:
    mixup = create_mixup(Config(cutmix_prob=1.0, mixup_alpha=0.8), num_classes=10)
    np.random.seed(1)
    images = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 3, 8, 8).clone()
    seen_blend = False
    for _ in range(20):
        mixed, targets = mixup(images.clone(), torch.arange(4))
        lam = targets[0, 0]
        if not torch.all((mixed[0] == 0) | (mixed[0] == 3)):  # a Mixup blend, not a CutMix box
            seen_blend = True
            torch.testing.assert_close(mixed[0, 0, 0, 0], (1 - lam) * 3.0)
    assert seen_blend
