"""Image augmentation of a whole batch on its device, with random parameters drawn per sample.

torchvision's v2 transforms draw one parameter set per call (one crop for the whole batch), and
kornia's RandomResizedCrop loops over samples; neither is both per-sample and one batched op, so the
few ops the SSL views and the CIFAR recipe need are written here as tensor code. Input: uint8 NCHW images;
output: normalised float32 NCHW. Every draw comes from one ``torch.Generator`` on the batch's device,
whose state (``state_dict``) goes into the training checkpoint, so a resumed run draws what an
uninterrupted one would. The albumentations pipelines (``augment=albumentations``) are the reference
these are tested against.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R 601 luma, as torchvision rounds it


class Augmentation(abc.ABC):
    """Owns the seeded generator; subclasses implement ``__call__(uint8 images) -> float images``."""

    def __init__(self, seed: int, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.generator, device=self.device)

    def uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * self.rand(n)

    def bernoulli(self, n: int, p: float) -> torch.Tensor:
        return self.rand(n) < p

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])

    @abc.abstractmethod
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 NCHW images -> augmented, normalised float32 NCHW images."""


# -- geometry --------------------------------------------------------------------------------------
def random_resized_crop_boxes(
    aug: Augmentation,
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    tries: int = 10,
) -> torch.Tensor:
    """(n, 4) integer boxes x0, y0, x1, y1: torchvision's RandomResizedCrop sampling, for n images at once.

    Up to ``tries`` (area, aspect) draws per image, the first that fits wins; images where none fits
    get the central crop with the aspect ratio clamped to ``ratio``, as torchvision does.
    """
    area = height * width
    target = area * (scale[0] + (scale[1] - scale[0]) * aug.rand(n, tries))
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * aug.rand(n, tries)
    aspect = torch.exp(log_r)
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.int().argmax(dim=1, keepdim=True)
    any_fit = fits.any(dim=1)
    w = w.gather(1, first).squeeze(1)
    h = h.gather(1, first).squeeze(1)
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        fw, fh = round(height * ratio[1]), height
    else:
        fw, fh = width, height
    w = torch.where(any_fit, w, torch.full_like(w, fw))
    h = torch.where(any_fit, h, torch.full_like(h, fh))
    # Offsets uniform over the valid positions (torch.randint(0, H - h + 1) per image).
    y0 = torch.where(any_fit, torch.floor(aug.rand(n) * (height - h + 1)), (height - h) // 2)
    x0 = torch.where(any_fit, torch.floor(aug.rand(n) * (width - w + 1)), (width - w) // 2)
    return torch.stack([x0, y0, x0 + w, y0 + h], dim=1)


def crop_resize(images: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Crop each float image to its box and resize it to ``size`` x ``size`` in one ``roi_align`` call.

    One bilinear sample at each output pixel's centre (``sampling_ratio=1``): the bilinear resize of
    albumentations' default (cv2.INTER_LINEAR), and an exact copy for a full-image box.
    """
    index = torch.arange(len(images), device=images.device, dtype=boxes.dtype).unsqueeze(1)
    rois = torch.cat([index, boxes], dim=1).to(images.dtype)
    return roi_align(
        images, rois, output_size=(size, size), spatial_scale=1.0, sampling_ratio=1, aligned=True
    )


def flip_where(images: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)


def pad_crop_flip(aug: Augmentation, images: torch.Tensor, pad: int, flip_p: float = 0.5) -> torch.Tensor:
    """The CIFAR recipe: reflect-pad by ``pad``, a random crop of the original size, horizontal flip.

    One gather over per-sample row/column indices; a flip is the reversed column index.
    """
    n, _, height, width = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode="reflect")
    oy = torch.floor(aug.rand(n) * (2 * pad + 1)).long()
    ox = torch.floor(aug.rand(n) * (2 * pad + 1)).long()
    flip = aug.bernoulli(n, flip_p)
    cols = torch.arange(width, device=images.device)
    cols = torch.where(flip.unsqueeze(1), cols.flip(0), cols) + ox.unsqueeze(1)
    rows = torch.arange(height, device=images.device) + oy.unsqueeze(1)
    batch = torch.arange(n, device=images.device).view(n, 1, 1)
    # Advanced indices around a slice put the indexed dims first: (n, H, W, C), i.e. channels_last.
    out = padded[batch, :, rows.unsqueeze(2), cols.unsqueeze(1)]
    return out.permute(0, 3, 1, 2)


# -- colour ----------------------------------------------------------------------------------------
def to_gray(images: torch.Tensor) -> torch.Tensor:
    r, g, b = images.unbind(1)
    w = GRAY_WEIGHTS
    return (w[0] * r + w[1] * g + w[2] * b).unsqueeze(1)


def _per_sample(values: torch.Tensor) -> torch.Tensor:
    return values.view(-1, 1, 1, 1)


def _blend(a: torch.Tensor, b: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """factor * a + (1 - factor) * b, clamped to [0, 1] (torchvision's ``_blend`` for float images)."""
    return (b + _per_sample(factor) * (a - b)).clamp_(0, 1)


def rgb_to_hsv(images: torch.Tensor) -> torch.Tensor:
    r, g, b = images.unbind(1)
    maxc, _ = images.max(dim=1)
    minc, _ = images.min(dim=1)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    s = delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc))
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, maxc], dim=1)


def hsv_to_rgb(images: torch.Tensor) -> torch.Tensor:
    h, s, v = images.unbind(1)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = torch.stack(
        [
            torch.stack([v, q, p, p, t, v], dim=1),
            torch.stack([t, v, v, q, p, p], dim=1),
            torch.stack([p, p, t, v, v, q], dim=1),
        ],
        dim=1,
    )  # (n, 3 channels, 6 sectors, H, W)
    index = i.unsqueeze(1).unsqueeze(2).expand(-1, 3, 1, -1, -1)
    return table.gather(2, index).squeeze(2)


def adjust_brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend(images, torch.zeros_like(images), factor)


def adjust_contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    mean = to_gray(images).mean(dim=(1, 2, 3), keepdim=True)
    return _blend(images, mean.expand_as(images), factor)


def adjust_saturation(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend(images, to_gray(images).expand_as(images), factor)


def adjust_hue(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue by ``shift`` (a share of the full circle, per sample) in HSV space."""
    h, s, v = rgb_to_hsv(images).unbind(1)
    h = (h + shift.view(-1, 1, 1)) % 1.0
    return hsv_to_rgb(torch.stack([h, s, v], dim=1))


def color_jitter(
    aug: Augmentation,
    images: torch.Tensor,
    brightness: float,
    contrast: float,
    saturation: float,
    hue: float,
    p: float,
) -> torch.Tensor:
    """torchvision's ColorJitter on float images in [0, 1], with factors and p drawn per sample.

    The four adjustments run in a fixed order (brightness, contrast, saturation, hue); torchvision and
    albumentations draw a random order per image, which would cost four passes per adjustment here.
    """
    n = len(images)
    out = images
    for adjust, amount in (
        (adjust_brightness, brightness),
        (adjust_contrast, contrast),
        (adjust_saturation, saturation),
    ):
        if amount > 0:
            out = adjust(out, aug.uniform(n, max(0.0, 1 - amount), 1 + amount))
    if hue > 0:
        out = adjust_hue(out, aug.uniform(n, -hue, hue))
    return torch.where(_per_sample(aug.bernoulli(n, p)), out, images)


def random_grayscale(aug: Augmentation, images: torch.Tensor, p: float) -> torch.Tensor:
    gray = to_gray(images).expand_as(images)
    return torch.where(_per_sample(aug.bernoulli(len(images), p)), gray, images)


def gaussian_blur(
    aug: Augmentation, images: torch.Tensor, kernel: int, sigma: tuple[float, float], p: float
) -> torch.Tensor:
    """Separable Gaussian blur with a per-sample sigma, as one grouped convolution per axis."""
    n, c, height, width = images.shape
    s = aug.uniform(n, *sigma).view(n, 1)
    x = torch.arange(kernel, device=images.device, dtype=images.dtype) - (kernel - 1) / 2
    weights = torch.exp(-(x**2) / (2 * s**2))
    weights = (weights / weights.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # (n*c, k)
    half = kernel // 2
    flat = images.reshape(1, n * c, height, width)
    flat = F.conv2d(
        F.pad(flat, (half, half, 0, 0), mode="reflect"), weights.view(n * c, 1, 1, kernel), groups=n * c
    )
    flat = F.conv2d(
        F.pad(flat, (0, 0, half, half), mode="reflect"), weights.view(n * c, 1, kernel, 1), groups=n * c
    )
    blurred = flat.view(n, c, height, width)
    return torch.where(_per_sample(aug.bernoulli(n, p)), blurred, images)


class Normalize:
    """(x - mean) / std per channel, optionally resizing to ``size`` (antialiased) first."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], size: int | None = None):
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)
        self.size = size

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [0, 255] or float [0, 1] images -> normalised float32."""
        x = images.float().div_(255) if images.dtype == torch.uint8 else images.float()
        if self.size and x.shape[-1] != self.size:
            x = F.interpolate(
                x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False
            )
        if self.mean.device != x.device:  # once: no host-to-device copy on every batch
            self.mean, self.std = self.mean.to(x.device), self.std.to(x.device)
        return (x - self.mean) / self.std


class StandardAugment(Augmentation):
    """The supervised CIFAR recipe on a batch: ``pad``-pixel reflect padding, random crop, flip."""

    def __init__(self, normalize: Normalize, pad: int, seed: int = 0, device: torch.device | str = "cpu"):
        super().__init__(seed, device)
        self.normalize, self.pad = normalize, pad

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.normalize(pad_crop_flip(self, images.float().div_(255), self.pad))


@dataclass(frozen=True)
class ViewParams:
    """One view's augmentation t ~ T: random resized crop, flip, colour jitter, grayscale, blur, solarize.

    ``jitter`` is (brightness, contrast, saturation, hue), applied with probability ``jitter_p``. SSL methods
    differ only in these numbers (SimCLR: both views alike; BYOL and MoCo v3: blur and solarize differ
    between the two views), so one batched op and one albumentations pipeline serve them all.
    """

    crop_scale_min: float = 0.08
    flip: bool = True
    jitter: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 0.2)
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.0
    solarize_p: float = 0.0

    @classmethod
    def simclr(
        cls,
        crop_scale_min: float = 0.08,
        flip: bool = True,
        color_jitter: float = 1.0,
        grayscale: bool = True,
        blur: bool = False,
    ) -> ViewParams:
        """SimCLR's view with colour-jitter strength s = ``color_jitter`` (0.8s, 0.8s, 0.8s, 0.2s; p=0.8),
        grayscale p=0.2 and blur p=0.5, each switchable for ablations."""
        s = color_jitter
        return cls(
            crop_scale_min=crop_scale_min,
            flip=flip,
            jitter=(0.8 * s, 0.8 * s, 0.8 * s, min(0.2 * s, 0.5)),
            jitter_p=0.8 if s > 0 else 0.0,
            grayscale_p=0.2 if grayscale else 0.0,
            blur_p=0.5 if blur else 0.0,
        )

    def blur_kernel(self, size: int) -> int:
        """The papers' kernel: 10% of the image side, odd, at least 3."""
        return max(3, (size // 10) | 1)


def solarize(aug: Augmentation, images: torch.Tensor, p: float, threshold: float = 0.5) -> torch.Tensor:
    """Per sample with probability p: pixels >= threshold become 1 - pixel (float images in [0, 1])."""
    solarized = torch.where(images >= threshold, 1.0 - images, images)
    return torch.where(_per_sample(aug.bernoulli(len(images), p)), solarized, images)


class ViewAugment(Augmentation):
    """One :class:`ViewParams` on a batch, every sample with its own draws; steps at probability 0 draw
    nothing, so switching one off leaves the draws of the others unchanged."""

    def __init__(
        self,
        normalize: Normalize,
        size: int,
        view: ViewParams | None = None,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ):
        super().__init__(seed, device)
        self.normalize, self.size, self.view = normalize, size, view or ViewParams.simclr()

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        n, _, height, width = images.shape
        v = self.view
        x = images.float().div_(255)
        x = crop_resize(
            x, random_resized_crop_boxes(self, n, height, width, (v.crop_scale_min, 1.0)), self.size
        )
        if v.flip:
            x = flip_where(x, self.bernoulli(n, 0.5))
        if v.jitter_p > 0 and any(v.jitter):
            x = color_jitter(self, x, *v.jitter, p=v.jitter_p)
        if v.grayscale_p > 0:
            x = random_grayscale(self, x, v.grayscale_p)
        if v.blur_p > 0:
            x = gaussian_blur(self, x, v.blur_kernel(self.size), (0.1, 2.0), p=v.blur_p)
        if v.solarize_p > 0:
            x = solarize(self, x, v.solarize_p)
        return self.normalize(x)
