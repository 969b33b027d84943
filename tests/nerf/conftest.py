"""Small inputs for the NeRF tests: a slice of the real lego scene, a video, fake AlexNet weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from nerf_helpers import LEGO
from PIL import Image


@pytest.fixture(autouse=True, scope="session")
def nerf_system_tools() -> None:
    """Not a skip: the NeRF study needs COLMAP and ffmpeg; say in one line which package is missing."""
    missing = [tool for tool in ("colmap", "ffmpeg") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: apt-get install {' '.join(missing)} (.ci/apt-packages.txt)"
        )


def slice_blender(src: Path, dst: Path, size: int, counts: dict[str, int]) -> Path:
    """A Blender dataset with ``counts[split]`` evenly spaced views per split, resized to ``size`` px."""
    for split, n in counts.items():
        meta = json.loads((src / f"transforms_{split}.json").read_text())
        frames = meta["frames"][:: max(1, len(meta["frames"]) // n)][:n]
        (dst / split).mkdir(parents=True, exist_ok=True)
        for frame in frames:
            image = Image.open(src / f"{frame['file_path']}.png").resize((size, size), Image.LANCZOS)
            image.save(dst / f"{frame['file_path']}.png")
        (dst / f"transforms_{split}.json").write_text(json.dumps({**meta, "frames": frames}))
    return dst


@pytest.fixture(scope="session")
def tiny_lego(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert LEGO.is_dir(), f"the shared lego scene is missing at {LEGO}"
    return slice_blender(LEGO, tmp_path_factory.mktemp("lego_tiny"), 50, {"train": 20, "val": 2, "test": 2})


@pytest.fixture(scope="session")
def fake_alexnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file torchvision's AlexNet loads (right names and shapes), a few bytes big: constant weights.

    The LPIPS value is meaningless, but the whole real loading path (torch hub cache, torchvision's
    AlexNet, torchmetrics' LPIPS) runs, as it does with the real alexnet-owt-7be5be79.pth.
    """
    import torchvision

    shapes = {k: v.shape for k, v in torchvision.models.alexnet(weights=None).state_dict().items()}
    state = {k: torch.full((1,), 0.01).expand(shape) for k, shape in shapes.items()}
    path = tmp_path_factory.mktemp("alexnet") / "alexnet-owt-7be5be79.pth"
    torch.save(state, path)
    return path
