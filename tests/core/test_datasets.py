"""The dataset registry: the single source of every dataset's facts, and each format written as its real
loader expects it (MNIST idx files, ImageFolder trees, flat image folders), read by torchvision's code."""

from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pytest
from PIL import Image

from projects.core.classifier_recipe import ClassifierConfig
from projects.core.data import load_split, num_classes
from projects.core.datasets import dataset_names, get_dataset, resolve_image_size
from projects.core.errors import ConfigError, DataError
from projects.core.mlproject import config_class
from projects.entrypoints import ENTRY_POINTS

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def test_every_registered_dataset_has_a_consistent_spec():
    assert {"cifar10", "cifar100", "stl10", "mnist", "fashion_mnist", "folder", "synthetic"} <= set(
        dataset_names()
    )
    for name in dataset_names():
        spec = get_dataset(name)
        assert spec.name == name and "train" in spec.splits and callable(spec.load)
        assert len(spec.mean) == len(spec.std) == 3 and min(spec.std) > 0 and spec.channels in (1, 3)
        assert spec.source and spec.num_classes >= 0 and spec.image_size >= 0
        # a dataset with a native size knows its classes; folder learns both from the data and the run
        assert (spec.num_classes == 0) == (spec.image_size == 0) == (name == "folder")
        if spec.image_size:
            assert resolve_image_size(name, 0) == spec.image_size and resolve_image_size(name, 64) == 64


def test_entry_point_dataset_choices_are_the_registry():
    choices = {
        entry: f.metadata["choices"]
        for entry, module in ENTRY_POINTS.items()
        for f in dataclasses.fields(config_class(module))
        if f.name == "dataset"
    }
    assert len(choices) >= 5  # classify, supervised, finetune, linear_eval, the SSL methods ...
    assert all(tuple(c) == dataset_names() for c in choices.values()), choices


def test_loaded_synthetic_split_matches_its_spec():
    spec = get_dataset("synthetic")
    train = load_split("synthetic", "train")
    assert train.images.shape == (5000, spec.image_size, spec.image_size, 3)
    assert num_classes(train) == spec.num_classes and len(load_split("synthetic", "test")) == 1000


def test_unknown_dataset_is_one_line():
    with pytest.raises(DataError, match=r"^unknown dataset 'imagenet'; choose one of: cifar10, ") as info:
        get_dataset("imagenet")
    assert "\n" not in str(info.value) and "folder" in str(info.value)


# --- MNIST / Fashion-MNIST: idx files as torchvision reads them -----------------------------------------


def write_idx(path, array: np.ndarray) -> None:
    """The idx format: big-endian magic (2051 images, 2049 labels) and sizes, then uint8 values."""
    magic = 2051 if array.ndim == 3 else 2049
    path.write_bytes(
        struct.pack(f">{1 + array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()
    )


def write_mnist(root, folder: str, train: int = 20, test: int = 10) -> dict[str, np.ndarray]:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for prefix, n in (("train", train), ("t10k", test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        written[prefix] = images
    return written


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_idx_files_load_through_torchvision_as_three_channels(tmp_path, name, folder):
    written = write_mnist(tmp_path, folder)
    train = load_split(name, "train", tmp_path, download=False)
    test = load_split(name, "test", tmp_path, download=False)
    assert train.images.shape == (20, 28, 28, 3) and train.images.dtype == np.uint8 and len(test) == 10
    assert all(np.array_equal(train.images[..., c], written["train"]) for c in range(3))  # grey repeated
    assert np.array_equal(test.images[..., 0], written["t10k"])
    assert train.labels.tolist() == [i % 10 for i in range(20)] and num_classes(train) == 10
    assert get_dataset(name).channels == 1 and len(set(get_dataset(name).mean)) == 1


def test_missing_mnist_offline_names_the_files_and_their_source(tmp_path):
    with pytest.raises(DataError, match=r"put FashionMNIST/raw/ there \(train-images-idx3-ubyte") as info:
        load_split("fashion_mnist", "train", tmp_path, download=False)
    assert str(tmp_path) in str(info.value) and "\n" not in str(info.value)


# --- folder: ImageFolder trees and flat folders of images ---------------------------------------------


def save(path, size: tuple[int, int], colour=RED) -> None:
    """An image of ``size`` (width, height) in ``colour``; the suffix picks the format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def class_tree(root, sizes=((40, 20), (17, 33), (16, 16))) -> None:
    """cat/ (red PNGs and a JPEG) and dog/ (blue PNGs) of different sizes."""
    for i, size in enumerate(sizes):
        save(root / "cat" / f"{i}.png", size, RED)
        save(root / "dog" / f"{i}.png", size, BLUE)
    save(root / "cat" / "photo.jpg", (50, 30), RED)


def test_labelled_folder_resizes_every_image_and_labels_by_class_folder(tmp_path):
    class_tree(tmp_path)
    data = load_split("folder", "train", tmp_path, image_size=12)
    assert data.images.shape == (7, 12, 12, 3) and data.images.dtype == np.uint8
    assert data.classes == ["cat", "dog"] and num_classes(data) == 2
    assert data.labels.tolist() == [0, 0, 0, 0, 1, 1, 1]  # cat's 3 PNGs + JPEG, then dog's
    cats, dogs = data.images[data.labels == 0].astype(int), data.images[data.labels == 1].astype(int)
    assert np.abs(cats - RED).max() < 8 and np.abs(dogs - BLUE).max() < 8  # JPEG is lossy


def test_folder_resizes_the_shorter_side_then_crops_the_center(tmp_path):
    image = np.zeros((20, 60, 3), np.uint8)  # thirds: red | green | blue
    image[:, :20], image[:, 20:40], image[:, 40:] = RED, GREEN, BLUE
    Image.fromarray(image).save(tmp_path / "wide.png")
    (pixels,) = load_split("folder", "train", tmp_path, image_size=10).images
    assert np.abs(pixels[:, 1:-1].astype(int) - GREEN).max() < 8  # the middle third, not squeezed


def test_train_and_test_folders_share_the_train_classes(tmp_path):
    class_tree(tmp_path / "train")
    save(tmp_path / "test" / "dog" / "a.png", (20, 20), BLUE)  # test may lack a class (cat)
    train = load_split("folder", "train", tmp_path, image_size=8)
    test = load_split("folder", "test", tmp_path, image_size=8)
    assert test.classes == train.classes == ["cat", "dog"] and test.labels.tolist() == [1]
    save(tmp_path / "test" / "bird" / "b.png", (20, 20))
    with pytest.raises(DataError, match=r"class folders \['bird'\] .* are not in the train split"):
        load_split("folder", "test", tmp_path, image_size=8)


def test_flat_folder_is_an_unlabelled_train_split_for_pretraining_only(tmp_path):
    save(tmp_path / "a.png", (30, 20))
    save(tmp_path / "b.jpeg", (20, 40))
    (tmp_path / "notes.txt").write_text("not an image")
    data = load_split("folder", "train", tmp_path, image_size=16)
    assert data.images.shape == (2, 16, 16, 3) and data.labels.tolist() == [-1, -1] and data.classes == []
    with pytest.raises(DataError, match="has no labels"):
        num_classes(data)
    with pytest.raises(DataError, match=r"^dataset=folder has no test split: .* holds one split \(train\)"):
        load_split("folder", "test", tmp_path, image_size=16)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("missing", r"^dataset=folder: .*missing is not a folder; data_dir must hold train/<class>/<image>"),
        ("empty", r"^dataset=folder: no images \(.*\) in .*empty; data_dir must hold"),
        ("no test", r"^dataset=folder has no test split: .*test is missing"),
        ("empty class", r"^dataset=folder: .*Found no valid file for the classes dog"),
        ("corrupt", r"^dataset=folder: cannot read .*bad\.png as an image"),
    ],
)
def test_folder_errors_name_the_path_and_the_layout_in_one_line(tmp_path, layout, message):
    root = tmp_path / layout.replace(" ", "_")
    split = "test" if layout == "no test" else "train"
    if layout == "empty":
        root.mkdir()
    if layout == "no test":
        class_tree(root / "train")
    if layout == "empty class":
        save(root / "cat" / "a.png", (8, 8))
        (root / "dog").mkdir()
    if layout == "corrupt":
        root.mkdir()
        (root / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=message) as info:
        load_split("folder", split, root, image_size=8)
    assert "\n" not in str(info.value)


def test_folder_needs_an_image_size_in_the_config_and_when_loading(tmp_path):
    message = r"^dataset=folder needs image_size > 0 \(its images are resized to it\)$"
    with pytest.raises(ConfigError, match=message):
        ClassifierConfig(dataset="folder", data_dir=str(tmp_path))
    with pytest.raises(ConfigError, match=message):
        load_split("folder", "train", tmp_path)
    assert ClassifierConfig(dataset="folder", data_dir=str(tmp_path), image_size=24).resolution == 24
