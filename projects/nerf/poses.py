"""Camera poses for photos and videos: nerfstudio's ``ns-process-data`` with the COLMAP binary (CPU SIFT)."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from projects.core.errors import DataError
from projects.nerf.inputs import Capture, list_images

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Poses:
    dataset: Path  # a nerfstudio dataset (transforms.json + images/)
    frames: int  # images handed to COLMAP (frames extracted from a video)
    registered: int  # images COLMAP gave a pose


def registered_frames(dataset: Path) -> int:
    transforms = dataset / "transforms.json"
    return len(json.loads(transforms.read_text())["frames"]) if transforms.is_file() else 0


def estimate_poses(
    capture: Capture,
    output_dir: Path,
    matching: str,
    num_frames: int,
    min_registered: float,
    verbose: bool = False,
) -> Poses:
    """Run ``ns-process-data video|images`` into ``output_dir``; fail if COLMAP registers too few frames.

    A finished ``output_dir`` (a resumed run) is reused rather than recomputed.
    """
    if capture.kind not in ("video", "images"):
        raise ValueError(f"{capture.kind} input already has poses")
    if (output_dir / "transforms.json").is_file():
        log.info("reusing COLMAP poses in %s", output_dir)
    else:
        # A half-finished attempt leaves a COLMAP database that the next feature_extractor would extend.
        shutil.rmtree(output_dir, ignore_errors=True)
        _process(capture, output_dir, matching, num_frames, verbose)
    frames = len(list_images(output_dir / "images"))
    registered = registered_frames(output_dir)
    log.info("COLMAP registered %d of %d frames", registered, frames)
    if frames < 3:
        raise DataError(
            f"only {frames} frame(s) could be extracted from {capture.path}; at least 3 are needed"
        )
    if registered < max(3, min_registered * frames):
        raise DataError(
            f"COLMAP registered {registered} of {frames} frames, below min_registered={min_registered:g}: "
            "the views are too far apart, too few, or textureless"
        )
    return Poses(output_dir, frames, registered)


def _process(capture: Capture, output_dir: Path, matching: str, num_frames: int, verbose: bool) -> None:
    from nerfstudio.process_data.images_to_nerfstudio_dataset import ImagesToNerfstudioDataset
    from nerfstudio.process_data.video_to_nerfstudio_dataset import VideoToNerfstudioDataset

    # gpu=False: GPU SIFT aborts without a display. No vocab tree: it is a download. verbose=True makes a
    # COLMAP failure surface as an AttributeError inside nerfstudio, so it stays off unless asked.
    common = dict(
        data=capture.path,
        output_dir=output_dir,
        matching_method=matching,
        sfm_tool="colmap",
        gpu=False,
        num_downscales=0,
        verbose=verbose,
    )
    try:
        if capture.kind == "video":
            converter = VideoToNerfstudioDataset(num_frames_target=num_frames, **common)
        else:
            converter = ImagesToNerfstudioDataset(**common)
        converter.main()
    except SystemExit as exc:
        # nerfstudio's run_command prints the failing command and its stderr, then calls sys.exit(1).
        raise DataError(
            f"ns-process-data failed on {capture.path} (exit {exc.code}); COLMAP's output is above"
        ) from None
    except RuntimeError as exc:
        raise DataError(f"ns-process-data failed on {capture.path}: {exc}") from None
