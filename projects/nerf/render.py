"""A video of the trained scene with ``ns-render``: an orbit around what the cameras look at, or
nerfstudio's spiral."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import yaml

FPS = 24
CAMERA_PATHS = ("orbit", "spiral")


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def look_at_center(c2w: np.ndarray) -> np.ndarray:
    """The point nearest (least squares) to every camera's optical axis (OpenGL: cameras look along -z)."""
    origins, dirs = c2w[:, :3, 3], -c2w[:, :3, 2]
    dirs = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    projectors = np.eye(3)[None] - dirs[:, :, None] * dirs[:, None, :]
    a = projectors.sum(axis=0)
    b = np.einsum("nij,nj->i", projectors, origins)
    return np.linalg.lstsq(a, b, rcond=1e-6)[0]


def orbit_poses(c2w: np.ndarray, frames: int) -> np.ndarray:
    """``frames`` camera-to-world matrices on a circle at the cameras' mean height and distance."""
    center = look_at_center(c2w)
    up = _normalize(c2w[:, :3, 1].mean(axis=0))
    offsets = c2w[:, :3, 3] - center
    height = float((offsets @ up).mean())
    flat = offsets - np.outer(offsets @ up, up)
    radius = float(np.linalg.norm(flat, axis=1).mean())
    e1 = _normalize(flat[0] if np.linalg.norm(flat[0]) > 1e-6 else np.cross(up, [1.0, 0.0, 0.0]))
    e2 = np.cross(up, e1)
    poses = []
    for theta in np.linspace(0.0, 2 * math.pi, frames, endpoint=False):
        position = center + height * up + radius * (math.cos(theta) * e1 + math.sin(theta) * e2)
        back = _normalize(position - center)
        right = _normalize(np.cross(up, back))
        pose = np.eye(4)
        pose[:3, :4] = np.stack([right, np.cross(back, right), back, position], axis=1)
        poses.append(pose)
    return np.stack(poses)


def train_cameras(config_yml: Path) -> Any:
    """The training cameras in the model's coordinates, from the run's own dataparser (no images read)."""
    config = yaml.load(config_yml.read_text(), Loader=yaml.Loader)
    return config.pipeline.datamanager.dataparser.setup().get_dataparser_outputs(split="train").cameras


def even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)  # libx264's yuv420p needs even sizes


def orbit_camera_path(config_yml: Path, seconds: float, height: int) -> dict[str, Any]:
    """A camera path in the JSON format ns-render reads (the viewer's export format)."""
    cameras = train_cameras(config_yml)
    c2w = np.tile(np.eye(4), (len(cameras), 1, 1))
    c2w[:, :3, :4] = cameras.camera_to_worlds.numpy()
    train_h, train_w = float(cameras.height[0]), float(cameras.width[0])
    fov = math.degrees(2 * math.atan(train_h / (2 * float(cameras.fy[0]))))
    height = even(height or train_h)
    frames = max(2, round(seconds * FPS))
    return {
        "camera_type": "perspective",
        "render_height": height,
        "render_width": even(height * train_w / train_h),
        "seconds": seconds,
        "camera_path": [
            {"camera_to_world": pose.flatten().tolist(), "fov": fov, "aspect": train_w / train_h}
            for pose in orbit_poses(c2w, frames)
        ],
    }


def video_duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return float(out.stdout.strip() or "nan")


def render_video(config_yml: Path, out_dir: Path, camera_path: str, seconds: float, height: int) -> Path:
    """Render with nerfstudio's ``ns-render camera-path`` (orbit) or ``ns-render spiral``; log the mp4."""
    from nerfstudio.scripts.render import RenderCameraPath, SpiralRender

    video = out_dir / f"{camera_path}.mp4"
    if camera_path == "orbit":
        path_json = out_dir / "orbit_camera_path.json"
        path_json.write_text(json.dumps(orbit_camera_path(config_yml, seconds, height)))
        RenderCameraPath(load_config=config_yml, output_path=video, camera_path_filename=path_json).main()
        mlflow.log_artifact(str(path_json), "video")
    else:
        train_h = float(train_cameras(config_yml).height[0])
        scale = train_h / even(height or train_h)
        SpiralRender(
            load_config=config_yml, output_path=video, seconds=seconds, frame_rate=FPS, downscale_factor=scale
        ).main()
    mlflow.log_artifact(str(video), "video")
    mlflow.log_metric("video/seconds", video_duration(video))
    return video
