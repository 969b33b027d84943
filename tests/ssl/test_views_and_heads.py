import numpy as np
import pytest
import torch

from projects.core.batch_augment import Normalize, ViewAugment, ViewParams
from projects.core.models import create_model
from projects.ssl.heads import create_head, mlp
from projects.ssl.views import BatchViews, TwoViews, view_augmentation


@pytest.mark.parametrize(("kind", "out"), [("none", 512), ("mlp", 128), ("mlp_bn", 64)])
def test_projection_heads(kind, out):
    head = create_head(kind, 512, out_dim=out)
    assert head(torch.randn(4, 512)).shape == (4, out)


def test_mlp_layers_and_the_final_batchnorm_without_affine():
    three = mlp(512, 64, 32, layers=3, last_bn=True)
    linears = [m for m in three if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 64), (64, 64), (64, 32)]
    assert isinstance(three[-1], torch.nn.BatchNorm1d) and not three[-1].affine
    assert three(torch.randn(4, 512)).shape == (4, 32)


def names(view: ViewParams) -> set[str]:
    return {type(t).__name__ for t in view_augmentation("cifar10", 32, view).transforms}


def test_two_views_differ_and_ablations_switch_steps_off():
    image = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    v1, v2 = TwoViews(view_augmentation("cifar10", 32, ViewParams.simclr()))(image)
    assert v1.shape == (3, 32, 32) and not torch.equal(v1, v2)
    assert {"RandomResizedCrop", "HorizontalFlip", "ColorJitter", "ToGray", "GaussianBlur"} <= names(
        ViewParams.simclr(blur=True)
    )
    off = ViewParams.simclr(flip=False, color_jitter=0, grayscale=False, blur=False)
    assert not {"HorizontalFlip", "ColorJitter", "ToGray", "GaussianBlur", "Solarize"} & names(off)
    assert "Solarize" in names(ViewParams(solarize_p=0.2))


def test_cifar_and_imagenet_stems():
    cifar = create_model("resnet18", stem="cifar")
    imagenet = create_model("resnet18", stem="imagenet")
    x = torch.randn(2, 3, 32, 32)
    assert cifar.conv1.stride == (1, 1) and isinstance(cifar.maxpool, torch.nn.Identity)
    assert imagenet.conv1.stride == (2, 2)
    assert cifar(x).shape == imagenet(x).shape == (2, 512)


def test_batched_views_of_one_image_differ_from_each_other_and_across_the_batch():
    image = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 32, 32), dtype=np.uint8))
    images = image.expand(8, 3, 32, 32).clone()
    normalize = Normalize((0.5,) * 3, (0.25,) * 3)
    for views in (
        BatchViews(ViewAugment(normalize, 32)),
        BatchViews(
            ViewAugment(normalize, 32), ViewAugment(normalize, 32, ViewParams(solarize_p=0.2), seed=1)
        ),
    ):
        (v1, v2), labels = views((images, torch.zeros(8)))
        assert v1.shape == v2.shape == (8, 3, 32, 32) and len(labels) == 8
        assert all(not torch.allclose(a, b) for a, b in zip(v1, v2, strict=True))
        assert len({tuple(v.flatten()[:64].tolist()) for v in torch.cat([v1, v2])}) == 16


def test_asymmetric_views_checkpoint_both_generators():
    normalize = Normalize((0.5,) * 3, (0.25,) * 3)

    def views():
        return BatchViews(
            ViewAugment(normalize, 32, seed=0), ViewAugment(normalize, 32, ViewParams(solarize_p=1), seed=1)
        )

    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    first = views()
    first((images, None))
    state = first.state_dict()
    expected = first((images, None))[0]
    second = views()
    second.load_state_dict(state)
    got = second((images, None))[0]
    assert all(torch.equal(a, b) for a, b in zip(expected, got, strict=True))
