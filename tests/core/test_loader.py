"""DataLoader seeding: albumentations has its own RNG, which torch does not seed per worker."""

import numpy as np
import pytest
import torch

from projects.core.batch_augment import ViewParams
from projects.core.data import ArrayDataset, ImageArrays
from projects.core.loop import make_loader
from projects.core.transforms import ImageOnly, standard_train_transform
from projects.ssl.views import TwoViews, view_augmentation

# One image repeated: any difference between two samples comes from the augmentation alone.
IMAGE = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
SAME = ImageArrays(np.repeat(IMAGE[None], 16, axis=0), np.zeros(16, dtype=np.int64), "same", ["one"])


def views(workers: int, seed: int, transform) -> list[torch.Tensor]:
    loader = make_loader(ArrayDataset(SAME, transform), 4, False, workers, seed=seed)
    return [x[0] if isinstance(x, list) else x for x, _ in loader]


@pytest.mark.parametrize(
    "transform",
    [
        TwoViews(view_augmentation("synthetic", 32, ViewParams.simclr())),
        ImageOnly(standard_train_transform("synthetic", 32)),
    ],
    ids=["simclr", "standard"],
)
def test_workers_draw_different_augmentations_and_runs_repeat(transform):
    first = views(2, seed=0, transform=transform)
    # batches 0 and 1 come from different workers; with a copied RNG state they were identical
    assert not torch.equal(first[0], first[1])
    assert all(torch.equal(a, b) for a, b in zip(first, views(2, seed=0, transform=transform), strict=True))
    assert not torch.equal(first[0], views(2, seed=1, transform=transform)[0])
    single = views(0, seed=0, transform=transform)
    assert all(torch.equal(a, b) for a, b in zip(single, views(0, seed=0, transform=transform), strict=True))
