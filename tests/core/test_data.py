"""torchvision's CIFAR/STL loaders run for real on tiny files written in the official on-disk formats;
splits are read-only and every consumer takes them as they are."""

import pickle
import warnings

import numpy as np
import pytest

from projects.core import pipeline
from projects.core.data import (
    ImageArrays,
    load_split,
    num_classes,
    split_train_val,
    stratified_fraction,
    to_tensor_normalized,
)
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


def write_stl10(root, train: int = 20, test: int = 10, unlabeled: int = 5):
    folder = root / "stl10_binary"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("test", test)):
        rng.integers(0, 255, (n, 3, 96, 96), dtype=np.uint8).tofile(folder / f"{split}_X.bin")
        (np.arange(n, dtype=np.uint8) % 10 + 1).tofile(folder / f"{split}_y.bin")  # STL labels are 1-based
    rng.integers(0, 255, (unlabeled, 3, 96, 96), dtype=np.uint8).tofile(folder / "unlabeled_X.bin")
    (folder / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)))
    (folder / "fold_indices.txt").write_text("")


def test_stl10_binary_loads_through_torchvision(tmp_path):
    write_stl10(tmp_path)
    train = load_split("stl10", "train", tmp_path, download=False)
    assert train.images.shape == (20, 96, 96, 3) and set(train.labels) == set(range(10))
    assert len(load_split("stl10", "unlabeled", tmp_path, download=False)) == 5


def test_stl10_pretraining_set_of_train_and_unlabeled_leaves_the_train_split_as_loaded(tmp_path):
    """The pretraining set train+unlabeled at fraction 1.0 is a new set: the labelled train split it was
    built from keeps its length and labels (the kNN bank and validation split are drawn from it)."""
    write_stl10(tmp_path)
    train = load_split("stl10", "train", tmp_path, download=False)
    unlabeled = load_split("stl10", "unlabeled", tmp_path, download=False)
    images, labels = train.images.copy(), train.labels.copy()
    pretrain = stratified_fraction(train, 1.0, seed=0).concat(stratified_fraction(unlabeled, 1.0, seed=0))
    assert len(pretrain) == 25 and (pretrain.labels == -1).sum() == 5
    assert len(train) == 20 and (train.labels >= 0).all()
    assert np.array_equal(train.images, images) and np.array_equal(train.labels, labels)
    both = load_split("stl10", "train+unlabeled", tmp_path, download=False)  # torchvision's own concatenation
    assert np.array_equal(both.images, pretrain.images) and np.array_equal(both.labels, pretrain.labels)


def test_a_split_the_dataset_lacks_is_one_line(tmp_path):
    with pytest.raises(DataError, match=r"^cifar10 has splits train/test, not 'unlabeled'$"):
        load_split("cifar10", "unlabeled", tmp_path, download=False)


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


def small_set(n: int = 12) -> ImageArrays:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 4, 4, 3), dtype=np.uint8)
    return ImageArrays(images, np.arange(n, dtype=np.int64) % 3, "small", ["a", "b", "c"])


def test_splits_are_read_only():
    data = load_split("synthetic", "test")
    with pytest.raises(ValueError, match="read-only"):
        data.images[0, 0, 0, 0] = 1
    with pytest.raises(ValueError, match="read-only"):
        data.labels[0] = 1
    for derived in (
        data.subset(np.arange(3)),
        stratified_fraction(data, 0.1, 0),
        *split_train_val(data, 0.1, 0),
    ):
        assert not derived.images.flags.writeable and not derived.labels.flags.writeable


def test_subset_and_concat_return_new_sets_and_leave_their_inputs_unchanged():
    a, b = small_set(), small_set(6)
    before = [(x.images.copy(), x.labels.copy()) for x in (a, b)]
    part, joined = a.subset(np.array([0, 2])), a.concat(b)
    assert len(part) == 2 and len(joined) == 18 and joined.name == "small+small"
    assert np.array_equal(joined.images[12:], b.images) and np.array_equal(part.images, a.images[[0, 2]])
    for x, (images, labels) in zip((a, b), before, strict=True):
        assert len(x) == len(labels) and np.array_equal(x.images, images) and np.array_equal(x.labels, labels)


def test_images_must_be_uint8_nhwc_with_one_int64_label_each():
    with pytest.raises(ValueError, match="uint8"):
        ImageArrays(np.zeros((2, 4, 4), np.uint8), np.zeros(2, np.int64), "grey", [])
    with pytest.raises(ValueError, match="int64"):
        ImageArrays(np.zeros((2, 4, 4, 3), np.uint8), np.zeros(3, np.int64), "short", [])


def test_read_only_splits_reach_tensors_without_warnings():
    data = small_set()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images, labels = pipeline.images_to_tensor(data)
        assert images.shape == (12, 3, 4, 4) and labels.tolist() == data.labels.tolist()
        assert pipeline.uint8_chw(data.images[0]).shape == (3, 4, 4)
        assert to_tensor_normalized("synthetic")(data.images[0]).shape == (3, 4, 4)


def test_num_classes_come_from_the_data_and_unlabelled_data_has_none():
    assert num_classes(small_set()) == 3
    unlabelled = ImageArrays(np.zeros((2, 4, 4, 3), np.uint8), np.full(2, -1, np.int64), "flat", [])
    with pytest.raises(DataError, match="flat has no labels"):
        num_classes(unlabelled)
