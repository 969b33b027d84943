import numpy as np
import pytest
import torch

from projects.core.batch_augment import Normalize, SimCLRAugment
from projects.core.models import create_model
from projects.ssl.heads import create_head
from projects.ssl.model import SimCLRModel
from projects.ssl.views import BatchTwoViews, TwoViews, simclr_augmentation


@pytest.mark.parametrize(("kind", "out"), [("none", 512), ("mlp", 128), ("mlp_bn", 64)])
def test_projection_heads(kind, out):
    head = create_head(kind, 512, out_dim=out)
    assert head(torch.randn(4, 512)).shape == (4, out)


def test_two_views_differ_and_ablations_switch_steps_off():
    image = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    v1, v2 = TwoViews(simclr_augmentation("cifar10", 32))(image)
    assert v1.shape == (3, 32, 32) and not torch.equal(v1, v2)
    names = [type(t).__name__ for t in simclr_augmentation("cifar10", 32, blur=True).transforms]
    assert {"RandomResizedCrop", "HorizontalFlip", "ColorJitter", "ToGray", "GaussianBlur"} <= set(names)
    off = simclr_augmentation("cifar10", 32, flip=False, color_jitter=0, grayscale=False, blur=False)
    assert [type(t).__name__ for t in off.transforms][:1] == ["RandomResizedCrop"]
    assert not {"HorizontalFlip", "ColorJitter", "ToGray", "GaussianBlur"} & {
        type(t).__name__ for t in off.transforms
    }


def test_cifar_and_imagenet_stems():
    cifar = create_model("resnet18", stem="cifar")
    imagenet = create_model("resnet18", stem="imagenet")
    x = torch.randn(2, 3, 32, 32)
    assert cifar.conv1.stride == (1, 1) and isinstance(cifar.maxpool, torch.nn.Identity)
    assert imagenet.conv1.stride == (2, 2)
    assert SimCLRModel(cifar)(x).shape == (2, 128) and imagenet(x).shape == (2, 512)


def test_batched_two_views_of_one_image_differ_from_each_other_and_across_the_batch():
    image = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 32, 32), dtype=np.uint8))
    images = image.expand(8, 3, 32, 32).clone()
    (v1, v2), labels = BatchTwoViews(SimCLRAugment(Normalize((0.5,) * 3, (0.25,) * 3), 32))(
        (images, torch.zeros(8))
    )
    assert v1.shape == v2.shape == (8, 3, 32, 32) and len(labels) == 8
    assert all(not torch.allclose(a, b) for a, b in zip(v1, v2, strict=True))
    assert len({tuple(v.flatten()[:64].tolist()) for v in torch.cat([v1, v2])}) == 16
