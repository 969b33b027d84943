"""``synthetic``: a procedural 32x32 dataset that a small network can learn offline, 10 shape/texture
classes, 5000 train / 1000 test images generated in memory (no files, no download).

Class identity is the shape or texture; colours, position, size and noise are random, so colour is
no shortcut for a classifier. Foreground and background colours are two different entries of a small
palette: with free random colours each image had a colour fingerprint that survives every SimCLR
augmentation, and SimCLR matched views by it alone (features of rank ~15, kNN below a random encoder).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from projects.core.datasets.base import DatasetSpec, ImageArrays, register_dataset

CLASSES = (
    "disc",
    "square",
    "triangle",
    "ring",
    "cross",
    "h_stripes",
    "v_stripes",
    "checker",
    "diagonal",
    "dots",
)
SIZE = 32
# Images and seed of each split: the same split is the same images on every machine.
SPLIT_SIZES = {"train": 5000, "test": 1000}
SPLIT_SEEDS = {"train": 0, "test": 1}
PALETTE = np.array(
    [
        [0.05, 0.05, 0.05],  # black
        [0.95, 0.95, 0.95],  # white
        [0.85, 0.15, 0.15],  # red
        [0.15, 0.65, 0.2],  # green
        [0.2, 0.3, 0.9],  # blue
        [0.95, 0.85, 0.2],  # yellow
        [0.6, 0.2, 0.7],  # purple
        [0.3, 0.85, 0.9],  # cyan
    ],
    dtype=np.float32,
)
# Foreground/background pairs at least 0.25 apart in mean brightness: the shape stays visible in grey.
PAIRS = np.array(
    [
        (i, j)
        for i in range(len(PALETTE))
        for j in range(len(PALETTE))
        if abs(PALETTE[i].mean() - PALETTE[j].mean()) >= 0.25
    ]
)


def _masks(label: int, dx: np.ndarray, dy: np.ndarray, s: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Boolean foreground mask (N, H, W) for one class; dx/dy are coordinates relative to centres."""
    r = np.sqrt(dx**2 + dy**2)
    inside = np.maximum(np.abs(dx), np.abs(dy)) < s
    if label == 0:
        return r < s
    if label == 1:
        return np.maximum(np.abs(dx), np.abs(dy)) < 0.8 * s
    if label == 2:
        return (dy < 0.7 * s) & (np.abs(dx) < (0.7 * s - dy) * 0.6)
    if label == 3:
        return np.abs(r - 0.7 * s) < 0.14 * s + 0.06
    if label == 4:
        return inside & ((np.abs(dx) < 0.22 * s) | (np.abs(dy) < 0.22 * s))
    if label == 5:
        return inside & (np.sin(dy * f) > 0)
    if label == 6:
        return inside & (np.sin(dx * f) > 0)
    if label == 7:
        return inside & (np.sin(dx * f) * np.sin(dy * f) > 0)
    if label == 8:
        return inside & (np.sin((dx + dy) * f * 0.7) > 0)
    if label == 9:
        return inside & (np.sin(dx * f) > 0.4) & (np.sin(dy * f) > 0.4)
    raise ValueError(label)


def make_synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (uint8, NHWC) with balanced labels, fully determined by ``seed``."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(CLASSES)
    rng.shuffle(labels)
    coords = np.linspace(-1.0, 1.0, SIZE, dtype=np.float32)
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    images = np.empty((n, SIZE, SIZE, 3), dtype=np.float32)
    for label in range(len(CLASSES)):
        idx = np.flatnonzero(labels == label)
        k = len(idx)
        cx, cy = (rng.uniform(-0.3, 0.3, (2, k, 1, 1))).astype(np.float32)
        s = rng.uniform(0.45, 0.8, (k, 1, 1)).astype(np.float32)
        f = rng.uniform(9.0, 14.0, (k, 1, 1)).astype(np.float32)
        mask = _masks(label, xx - cx, yy - cy, s, f)[..., None]
        pair = PAIRS[rng.integers(len(PAIRS), size=k)]
        fg, bg = PALETTE[pair[:, 0]][:, None, None], PALETTE[pair[:, 1]][:, None, None]
        images[idx] = np.where(mask, fg, bg)
    images += rng.normal(0, 0.06, images.shape).astype(np.float32)
    return (np.clip(images, 0, 1) * 255).round().astype(np.uint8), labels.astype(np.int64)


def _load(split: str, root: Path, download: bool, image_size: int) -> ImageArrays:
    images, labels = make_synthetic(SPLIT_SIZES[split], seed=SPLIT_SEEDS[split])
    return ImageArrays(images, labels, "synthetic", list(CLASSES))


register_dataset(
    DatasetSpec(
        name="synthetic",
        num_classes=len(CLASSES),
        image_size=SIZE,
        channels=3,
        mean=(0.5, 0.5, 0.5),
        std=(0.3, 0.3, 0.3),
        splits=tuple(SPLIT_SIZES),
        source="nothing (generated in memory)",
        load=_load,
    )
)
