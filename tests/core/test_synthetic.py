"""The procedural dataset: reproducible, balanced, and colour carries neither class nor instance identity."""

import numpy as np

from projects.core.datasets.synthetic import CLASSES, PALETTE, make_synthetic


def test_same_seed_same_images_balanced_labels():
    a, la = make_synthetic(200, seed=3)
    b, lb = make_synthetic(200, seed=3)
    assert a.dtype == np.uint8 and a.shape == (200, 32, 32, 3)
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert np.bincount(la).tolist() == [200 // len(CLASSES)] * len(CLASSES)
    assert not np.array_equal(a, make_synthetic(200, seed=4)[0])


def test_colour_alone_predicts_neither_class_nor_instance():
    images, labels = make_synthetic(2000, seed=0)
    colour = images.reshape(len(images), -1, 3).mean(1)
    # nearest class-mean colour classifier, scored on the second half: chance level (10%)
    train, test = slice(0, 1000), slice(1000, 2000)
    centroids = np.stack([colour[train][labels[train] == c].mean(0) for c in range(len(CLASSES))])
    predicted = np.argmin(((colour[test, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (predicted == labels[test]).mean() < 0.2
    # every pixel is one of the palette colours (+ noise): many images share a colour pair, so two
    # augmented views cannot be matched by colour alone (SimCLR has to look at shape and texture)
    distance = np.sqrt(((images[:50, ..., None, :] / 255.0 - PALETTE) ** 2).sum(-1)).min(-1)
    assert np.median(distance) < 0.12  # within the pixel noise (sigma 0.06 per channel) of a palette colour
