"""torchvision's CIFAR/STL loaders run for real on tiny files written in the official on-disk formats."""

import pickle

import numpy as np
import pytest

from projects.core.data import load_split, stratified_fraction
from projects.core.errors import DataError


def write_cifar(root, name: str, n: int = 20, classes: int = 10):
    rng = np.random.default_rng(0)
    folder = root / ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python")
    folder.mkdir(parents=True)
    label_key = "labels" if name == "cifar10" else "fine_labels"
    files = (
        [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"] if name == "cifar10" else ["train", "test"]
    )
    for file in files:
        batch = {
            "data": rng.integers(0, 255, (n, 3072), dtype=np.uint8),
            label_key: [i % classes for i in range(n)],
        }
        with open(folder / file, "wb") as handle:
            pickle.dump(batch, handle)
    meta_name, key = ("batches.meta", "label_names") if name == "cifar10" else ("meta", "fine_label_names")
    with open(folder / meta_name, "wb") as handle:
        pickle.dump({key: [f"class{i}" for i in range(classes)]}, handle)
    return folder


@pytest.mark.parametrize(("name", "classes", "train_files"), [("cifar10", 10, 5), ("cifar100", 100, 1)])
def test_cifar_pickles_load_through_torchvision(tmp_path, name, classes, train_files):
    write_cifar(tmp_path, name, n=200, classes=classes)
    train = load_split(name, "train", tmp_path, download=False)
    test = load_split(name, "test", tmp_path, download=False)
    assert train.images.shape == (200 * train_files, 32, 32, 3) and train.images.dtype == np.uint8
    assert test.images.shape == (200, 32, 32, 3)
    assert len(train.classes) == classes and train.labels.max() == classes - 1


def test_stl10_binary_loads_through_torchvision(tmp_path):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 20), ("test", 10)):
        rng.integers(0, 255, (n, 3, 96, 96), dtype=np.uint8).tofile(folder / f"{split}_X.bin")
        (np.arange(n, dtype=np.uint8) % 10 + 1).tofile(folder / f"{split}_y.bin")  # STL labels are 1-based
    rng.integers(0, 255, (5, 3, 96, 96), dtype=np.uint8).tofile(folder / "unlabeled_X.bin")
    (folder / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)))
    (folder / "fold_indices.txt").write_text("")
    train = load_split("stl10", "train", tmp_path, download=False)
    assert train.images.shape == (20, 96, 96, 3) and set(train.labels) == set(range(10))
    assert len(load_split("stl10", "unlabeled", tmp_path, download=False)) == 5


def test_missing_dataset_offline_names_the_path_and_what_to_put_there(tmp_path):
    with pytest.raises(DataError, match=r"cifar-100-python/ there") as info:
        load_split("cifar100", "train", tmp_path / "nowhere", download=False)
    assert str(tmp_path / "nowhere") in str(info.value) and "\n" not in str(info.value)


def test_stratified_fraction_is_seeded_and_keeps_class_balance():
    data = load_split("synthetic", "train")
    a, b = stratified_fraction(data, 0.1, seed=3), stratified_fraction(data, 0.1, seed=3)
    assert len(a) == 500 and np.array_equal(a.labels, b.labels) and np.array_equal(a.images, b.images)
    assert np.all(np.bincount(a.labels) == 50)
    assert not np.array_equal(stratified_fraction(data, 0.1, seed=4).images, a.images)
