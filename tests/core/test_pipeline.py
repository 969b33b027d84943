"""The device pipeline: seeded, resumable index batches, and a Trainer whose resumed run draws the same
batches and augmentations as an uninterrupted one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from projects.core import pipeline
from projects.core.batch_augment import Normalize, StandardAugment
from projects.core.data import ImageArrays
from projects.core.errors import ConfigError
from projects.core.loop import Trainer, is_conv_net, resolve_precision

RNG = np.random.default_rng(0)
DATA = ImageArrays(
    RNG.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8),
    RNG.integers(0, 4, 40).astype(np.int64),
    "tiny",
    list("abcd"),
)


def device_batches(seed: int = 0, **kwargs) -> pipeline.DeviceBatches:
    images, labels = pipeline.images_to_tensor(DATA)
    return pipeline.DeviceBatches(images, labels, 16, shuffle=True, seed=seed, **kwargs)


def order(batches) -> list[int]:
    return [int(i) for _, labels in batches for i in labels]


def test_batches_are_the_images_of_their_labels_and_cover_the_split():
    images, labels = pipeline.images_to_tensor(DATA)
    seen = []
    for x, y in pipeline.DeviceBatches(images, torch.arange(40), 16, shuffle=True):
        assert x.dtype == torch.uint8 and x.shape[1:] == (3, 8, 8)
        assert torch.equal(x, images[y])
        seen += y.tolist()
    assert sorted(seen) == list(range(40))
    assert len(pipeline.DeviceBatches(images, labels, 16, shuffle=True, drop_last=True)) == 2
    assert len(pipeline.DeviceBatches(images, labels, 16, shuffle=True)) == 3


def test_same_seed_same_order_epochs_differ_and_state_restores_the_next_epoch():
    a, b = device_batches(seed=1), device_batches(seed=1)
    assert order(a) == order(b)
    assert order(a) != order(device_batches(seed=2))
    state = a.state_dict()
    expected = order(a)  # the epoch after the saved state
    c = device_batches(seed=99)
    c.load_state_dict(state)
    assert order(c) == expected


def test_albumentations_cannot_run_on_the_device_and_auto_picks_device_on_cpu():
    with pytest.raises(ConfigError, match="augment=albumentations runs per image"):
        pipeline.resolve_pipeline("device", "albumentations", 10, torch.device("cpu"))
    assert pipeline.resolve_pipeline("auto", "batched", 10**9, torch.device("cpu")) == "device"
    assert pipeline.resolve_pipeline("auto", "albumentations", 10, torch.device("cpu")) == "workers"


def test_conv_nets_run_channels_last_and_vits_do_not():
    from projects.core.models import create_model

    assert is_conv_net(create_model("resnet18", num_classes=10, stem="cifar"))
    assert not is_conv_net(create_model("vit_d192_l25", num_classes=10, image_size=32))


def test_auto_precision_is_bf16_only_where_the_hardware_has_it(monkeypatch):
    from projects.core import loop

    monkeypatch.setattr(loop, "cpu_has_bf16", lambda: True)
    assert resolve_precision("auto", torch.device("cpu")) == "bf16"
    monkeypatch.setattr(loop, "cpu_has_bf16", lambda: False)
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("fp16", torch.device("cpu")) == "fp16"


class Augmented:
    """batch_transform of the supervised recipe: batched pad-crop-flip on uint8 images."""

    def __init__(self, seed: int):
        self.augment = StandardAugment(Normalize((0.5,) * 3, (0.25,) * 3), pad=1, seed=seed)

    def __call__(self, batch):
        images, labels = batch
        return self.augment(images), labels

    def state_dict(self):
        return self.augment.state_dict()

    def load_state_dict(self, state):
        self.augment.load_state_dict(state)


def trainer(epochs: int, seed: int = 0) -> Trainer:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 4))

    def step(m, batch):
        x, y = batch
        return nn.functional.cross_entropy(m(x), y), len(x)

    return Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        device_batches(seed=seed, drop_last=True),
        step,
        epochs=epochs,
        precision="fp32",
        progress=False,
        batch_transform=Augmented(seed),
        channels_last=True,
    )


def test_a_resumed_run_draws_what_an_uninterrupted_one_would():
    whole = trainer(epochs=3)
    whole.fit()
    first = trainer(epochs=1)
    first.fit()
    state = first.state_dict()
    resumed = trainer(epochs=3, seed=7)  # another seed: everything must come from the checkpoint
    resumed.load_state_dict(state)
    resumed.fit()
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    other = trainer(epochs=3, seed=1)
    other.fit()
    assert not torch.allclose(whole.model[2].weight, other.model[2].weight)


def test_the_optimizer_step_hook_runs_after_every_step():
    from projects.core.loop import Callback

    class Count(Callback):
        steps = 0

        def on_optimizer_step(self, trainer):
            Count.steps += 1

    t = trainer(epochs=2)
    t.callbacks.append(Count())
    t.fit()
    assert Count.steps == 2 * 2 == t.global_step  # 40 images // 16 = 2 steps per epoch
