"""What kind of capture ``data`` is: a video, a folder of photos, a nerfstudio or a Blender dataset.

Detection only lists files and reads a video's header, so it runs in ``Config.__post_init__`` and bad
input fails before any compute.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from projects.core.errors import DataError

VIDEO_EXTS = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"}
# nerfstudio's own list (process_data_utils.list_images), without raw formats that need rawpy.
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".tif", ".tiff"}
MIN_IMAGES = 3
BLENDER_SPLITS = ("train", "val", "test")

KINDS = ("video", "images", "nerfstudio", "blender")


@dataclass(frozen=True)
class Capture:
    kind: str  # one of KINDS
    path: Path
    count: int  # frames in the video, images in the folder, or training frames of a dataset

    @property
    def needs_poses(self) -> bool:
        """Videos and photos go through COLMAP; datasets already hold poses."""
        return self.kind in ("video", "images")


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def video_frame_count(video: Path) -> int:
    """Frames (packets) in the first video stream, as nerfstudio counts them; 0 if there is none."""
    try:
        out = subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-count_packets",
                "-show_entries",
                "stream=nb_read_packets",
                "-of",
                "csv=p=0",
                str(video),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except FileNotFoundError:
        raise DataError("ffprobe (ffmpeg) is not installed: `apt-get install ffmpeg`") from None
    digits = "".join(ch for ch in out.stdout.split(",")[0].strip() if ch.isdigit())
    return int(digits) if out.returncode == 0 and digits else 0


def _frames_in(transforms: Path) -> int:
    try:
        return len(json.loads(transforms.read_text())["frames"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{transforms} is not a valid transforms file ({type(exc).__name__})") from None


def detect(data: str | Path) -> Capture:
    """Classify ``data``; one :class:`DataError` line if it cannot be used."""
    path = Path(data).expanduser()
    if not path.exists():
        raise DataError(f"data={data!s} does not exist")
    if path.is_file():
        if path.suffix.lower() not in VIDEO_EXTS:
            raise DataError(f"data={data!s} is a file but not a video ({', '.join(sorted(VIDEO_EXTS))})")
        frames = video_frame_count(path)
        if frames == 0:
            raise DataError(f"data={data!s}: the video has no frames (or no readable video stream)")
        return Capture("video", path, frames)
    if all((path / f"transforms_{split}.json").is_file() for split in BLENDER_SPLITS):
        return Capture("blender", path, _frames_in(path / "transforms_train.json"))
    if (path / "transforms.json").is_file():
        return Capture("nerfstudio", path, _frames_in(path / "transforms.json"))
    images = list_images(path)
    if len(images) < MIN_IMAGES:
        raise DataError(
            f"data={data!s} holds {len(images)} image(s); at least {MIN_IMAGES} are needed "
            "(or a video, a transforms.json dataset, or transforms_{train,val,test}.json)"
        )
    return Capture("images", path, len(images))
