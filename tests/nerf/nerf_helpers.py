"""Helpers shared by the NeRF tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
LEGO = REPO.parent / "shared" / "data" / "nerf_synthetic_lego_200"
MLFLOW = str(Path(sys.executable).with_name("mlflow"))


def mlflow_run(*params: str, cwd: Path) -> subprocess.CompletedProcess:
    """``mlflow run <repo> -e nerf --env-manager local -P ...`` with this venv's python first on PATH."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    args = [MLFLOW, "run", str(REPO), "-e", "nerf", "--env-manager", "local"]
    for p in params:
        args += ["-P", p]
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def blob_texture(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """Colourful multi-scale blobs: many distinct corners and blobs for SIFT to match."""
    layers = []
    for cells in (8, 24, 64):
        coarse = torch.from_numpy(rng.random((1, 3, cells, cells), dtype=np.float32))
        layers.append(torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic")[0])
    tex = (layers[0] + 0.7 * layers[1] + 0.5 * layers[2]).permute(1, 2, 0).numpy()
    tex = (tex - tex.min()) / (tex.max() - tex.min())
    return np.clip((tex - 0.5) * 1.6 + 0.5, 0, 1)


def render_textured_scene(folder: Path, views: int = 60, size: int = 128, seed: int = 0) -> Path:
    """Ray-cast a textured box on a textured floor from ``views`` cameras on a ring; write PNGs.

    A stand-in for photos of an object walked around: neighbours are 360/views degrees apart.
    """
    rng = np.random.default_rng(seed)
    textures = [blob_texture(rng) for _ in range(4)]  # floor, and the box's x, y, z faces
    lo, hi = np.array([-0.8, -0.6, -1.0]), np.array([0.8, 0.6, 0.5])
    focal = size * 0.9
    ii, jj = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="xy")
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(views):
        angle = 2 * np.pi * k / views
        origin = np.array([3.2 * np.cos(angle), 3.2 * np.sin(angle), 1.6])
        back = origin / np.linalg.norm(origin)
        right = np.cross([0, 0, 1.0], back)
        right /= np.linalg.norm(right)
        up = np.cross(back, right)
        dirs = (ii - size / 2)[..., None] * right - (jj - size / 2)[..., None] * up - focal * back
        dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
        image = np.full((size, size, 3), 0.55)
        # Floor z = -1 within |x|, |y| < 3.
        t_floor = (-1.0 - origin[2]) / np.where(dirs[..., 2] < -1e-6, dirs[..., 2], -1e-6)
        hit = origin + t_floor[..., None] * dirs
        on_floor = (dirs[..., 2] < -1e-6) & (np.abs(hit[..., 0]) < 3) & (np.abs(hit[..., 1]) < 3)
        uv = ((hit[..., :2] + 3) / 6 * 255).clip(0, 255).astype(int)
        image[on_floor] = textures[0][uv[..., 1], uv[..., 0]][on_floor]
        # The box (slab method); its faces cover the floor behind it.
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (lo - origin) / dirs, (hi - origin) / dirs
        t_near = np.minimum(t1, t2).max(axis=-1)
        t_far = np.maximum(t1, t2).min(axis=-1)
        on_box = (t_near < t_far) & (t_near > 0)
        axis = np.minimum(t1, t2).argmax(axis=-1)
        p = origin + t_near[..., None] * dirs
        for face in range(3):
            a, b = [d for d in range(3) if d != face]
            sel = on_box & (axis == face)
            ua = ((p[..., a] - lo[a]) / (hi[a] - lo[a]) * 255).clip(0, 255).astype(int)
            ub = ((p[..., b] - lo[b]) / (hi[b] - lo[b]) * 255).clip(0, 255).astype(int)
            image[sel] = textures[1 + face][ub, ua][sel]
        Image.fromarray((image * 255).astype(np.uint8)).save(folder / f"view_{k:03d}.png")
    return folder
