"""Batched augmentation: per-sample draws at the configured rates, the reference's crop distribution,
content that moves with the crop, torchvision's colour maths, and seeding."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from projects.core import batch_augment as B

N = 4000  # draws per rate test: the binomial std of a rate is <= 0.008, tolerances are 4 std


class Draws(B.Augmentation):
    """Only the seeded draws, for testing the ops one at a time."""

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return images


def aug(seed: int = 0) -> B.Augmentation:
    return Draws(seed)


def coordinate_images(n: int, size: int = 32) -> torch.Tensor:
    """uint8 images whose red channel is the column and green channel the row (x 8): pixels say where they are."""
    axis = torch.arange(size) * 8
    image = torch.stack([axis.view(1, -1).expand(size, size), axis.view(-1, 1).expand(size, size)])
    image = torch.cat([image, torch.full((1, size, size), 128)])
    return image.to(torch.uint8).expand(n, 3, size, size).clone()


def no_op_normalize() -> B.Normalize:
    return B.Normalize((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


def test_crop_areas_and_ratios_follow_the_albumentations_reference():
    boxes = B.random_resized_crop_boxes(aug(), N, 32, 32, scale=(0.08, 1.0))
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 32).all() and (boxes[:, 3] <= 32).all()
    ours = (w * h / 1024).numpy()
    # rounding to whole pixels lets the smallest areas dip a little under the 0.08 floor, as in the reference
    assert ours.min() >= 0.06 and ours.max() <= 1.0

    reference = A.RandomResizedCrop(size=(32, 32), scale=(0.08, 1.0))
    reference.set_random_seed(0)
    image = np.zeros((32, 32, 3), np.uint8)
    coords = [
        reference.get_params_dependent_on_data({"shape": image.shape}, {"image": image})["crop_coords"]
        for _ in range(N)
    ]
    theirs = np.array([(x1 - x0) * (y1 - y0) / 1024 for x0, y0, x1, y1 in coords])
    assert abs(ours.mean() - theirs.mean()) < 0.02
    for q in (0.25, 0.5, 0.75):
        assert abs(np.quantile(ours, q) - np.quantile(theirs, q)) < 0.03, q
    aspect = (w / h).numpy()
    assert 0.6 < aspect.min() and aspect.max() < 1.6  # (3/4, 4/3) plus whole-pixel rounding


def test_a_narrow_scale_range_is_respected():
    boxes = B.random_resized_crop_boxes(aug(), N, 32, 32, scale=(0.5, 0.6))
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / 1024).numpy()
    assert 0.45 < area.min() and area.max() < 0.65


def test_crop_offsets_cover_the_image_uniformly():
    boxes = B.random_resized_crop_boxes(aug(), N, 32, 32, scale=(0.25, 0.25), ratio=(1.0, 1.0))
    assert ((boxes[:, 2] - boxes[:, 0]) == 16).all()  # 0.25 of 32x32 at ratio 1 is 16x16
    x0 = boxes[:, 0].long()
    counts = torch.bincount(x0, minlength=17).float()
    assert x0.min() == 0 and x0.max() == 16 and counts.min() > 0.5 * counts.mean()


def test_the_content_moves_with_the_crop():
    images = coordinate_images(2).float() / 255
    boxes = torch.tensor([[0.0, 0.0, 16.0, 16.0], [16.0, 8.0, 32.0, 24.0]])
    out = B.crop_resize(images, boxes, 32) * 255 / 8  # back to pixel coordinates
    x, y = out[:, 0], out[:, 1]
    assert x[0].min() == pytest.approx(0, abs=0.6) and x[0].max() == pytest.approx(15, abs=0.6)
    assert x[1].min() == pytest.approx(16, abs=0.6) and x[1].max() == pytest.approx(31, abs=0.6)
    assert y[1].min() == pytest.approx(8, abs=0.6) and y[1].max() == pytest.approx(23, abs=0.6)
    # monotone left to right: not flipped
    assert (x[:, :, 1:] >= x[:, :, :-1] - 1e-4).all()


def simclr(seed: int = 0, **kwargs) -> B.ViewAugment:
    return B.ViewAugment(no_op_normalize(), 32, B.ViewParams.simclr(**kwargs), seed=seed)


def test_views_differ_per_sample_within_one_batch():
    images = coordinate_images(64)
    views = simclr()(images)
    flat = views.flatten(1)
    distinct = {tuple(v[:50].round(decimals=4).tolist()) for v in flat}
    assert len(distinct) == 64  # 64 copies of one image -> 64 different views


def test_flip_rate_is_one_half():
    x = simclr(crop_scale_min=1.0, color_jitter=0, grayscale=False)(coordinate_images(N))
    flipped = x[:, 0, 16, 0] > x[:, 0, 16, -1]  # red = column: decreasing means mirrored
    assert abs(flipped.float().mean().item() - 0.5) < 0.032


def test_jitter_rate_is_0_8_and_grayscale_rate_0_2():
    images = torch.rand(N, 3, 8, 8)
    jittered = B.color_jitter(aug(1), images, 0.4, 0.4, 0.4, 0.1, p=0.8)
    changed = (jittered - images).abs().flatten(1).amax(1) > 1e-6
    assert abs(changed.float().mean().item() - 0.8) < 0.032
    gray = B.random_grayscale(aug(2), images, p=0.2)
    is_gray = (gray[:, 0] == gray[:, 1]).flatten(1).all(1) & (gray[:, 1] == gray[:, 2]).flatten(1).all(1)
    assert abs(is_gray.float().mean().item() - 0.2) < 0.032


def test_solarize_rate_and_pixels_follow_the_reference():
    images = torch.rand(N, 3, 8, 8)
    out = B.solarize(aug(3), images, p=0.2)
    changed = (out - images).abs().flatten(1).amax(1) > 1e-6
    assert abs(changed.float().mean().item() - 0.2) < 0.032
    reference = A.Solarize(threshold_range=(0.5, 0.5), p=1.0)
    image = (images[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    theirs = torch.from_numpy(reference(image=image)["image"]).permute(2, 0, 1).float() / 255
    ours = B.solarize(aug(4), torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255, p=1.0)[0]
    assert torch.allclose(ours, theirs, atol=1 / 255 + 1e-6)


def test_switched_off_steps_change_nothing():
    images = coordinate_images(8)
    x = simclr(crop_scale_min=1.0, flip=False, color_jitter=0, grayscale=False)(images)
    assert torch.allclose(x, images.float() / 255, atol=1e-5)  # full crop, no flip, no colour


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (B.adjust_brightness, TF.adjust_brightness),
        (B.adjust_contrast, TF.adjust_contrast),
        (B.adjust_saturation, TF.adjust_saturation),
    ],
)
def test_colour_adjustments_match_torchvision_per_sample(ours, theirs):
    images = torch.rand(6, 3, 16, 16)
    factors = torch.tensor([0.2, 0.6, 1.0, 1.3, 1.8, 0.0])
    out = ours(images, factors)
    for image, factor, result in zip(images, factors, out, strict=True):
        assert torch.allclose(result, theirs(image, float(factor)), atol=1e-5)


def test_hue_matches_torchvision_per_sample():
    images = torch.rand(5, 3, 16, 16)
    shifts = torch.tensor([-0.3, -0.1, 0.0, 0.05, 0.2])
    out = B.adjust_hue(images, shifts)
    for image, shift, result in zip(images, shifts, out, strict=True):
        assert torch.allclose(result, TF.adjust_hue(image, float(shift)), atol=1e-4)


def test_blur_smooths_only_the_chosen_samples():
    images = torch.rand(N // 4, 3, 16, 16)
    blurred = B.gaussian_blur(aug(), images, kernel=3, sigma=(1.0, 2.0), p=0.5)
    changed = (blurred - images).abs().flatten(1).amax(1) > 1e-6
    assert abs(changed.float().mean().item() - 0.5) < 0.07
    roughness = lambda x: (x[..., 1:] - x[..., :-1]).abs().mean()  # noqa: E731
    assert roughness(blurred[changed]) < 0.7 * roughness(images[changed])


def test_pad_crop_flip_shifts_by_at_most_the_padding_and_flips_half():
    images = coordinate_images(N)
    out = B.StandardAugment(no_op_normalize(), pad=4)(images) * 255 / 8
    x = out[:, 0, 16, :]
    flipped = x[:, 0] > x[:, -1]
    assert abs(flipped.float().mean().item() - 0.5) < 0.032
    # an unflipped row reads columns c - 4 + offset; reflect padding mirrors past the border
    centre = torch.where(flipped, x[:, 15], x[:, 16])
    shift = (centre - 16).round().long()
    assert shift.min() == -4 and shift.max() == 4
    counts = torch.bincount(shift + 4, minlength=9).float()
    assert counts.min() > 0.7 * counts.mean()  # 9 offsets, about equally often


def test_same_seed_repeats_and_another_seed_differs():
    images = coordinate_images(16)
    assert torch.equal(simclr(seed=3)(images), simclr(seed=3)(images))
    assert not torch.equal(simclr(seed=3)(images), simclr(seed=4)(images))


def test_generator_state_restores_the_next_draws():
    images = coordinate_images(16)
    first = simclr(seed=5)
    first(images)
    state = first.state_dict()
    expected = first(images)
    second = simclr(seed=99)
    second.load_state_dict(state)
    assert torch.equal(second(images), expected)
