"""LPIPS(alex) for nerfacto, optional: real with AlexNet weights, absent (not NaN) without them.

nerfacto builds torchmetrics' LPIPS when the model is constructed, and that downloads torchvision's
AlexNet weights, so offline ns-train/ns-eval/ns-render all fail as shipped. We decide once, before
nerfstudio builds a model: weights from ``lpips_weights``, the torch hub cache, or one download attempt;
failing those, torchmetrics' class is swapped for a stub and nerfacto's metrics drop ``lpips``.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import torch

from projects.core.errors import ConfigError

log = logging.getLogger(__name__)

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision's AlexNet_Weights.IMAGENET1K_V1 file name


def cached_weights() -> Path:
    """Where torchvision looks for the weights: ``$TORCH_HOME/hub/checkpoints/<file>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE


def _download() -> str | None:
    """One download attempt with torchvision's own code; the reason on failure."""
    import torchvision

    try:
        torchvision.models.AlexNet_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
    except Exception as exc:  # URLError, HTTPError, SSL, a truncated file: all mean "not available"
        return f"{type(exc).__name__}: {str(exc).strip()[:120]}"
    return None


def use_weights_file(weights: Path, hub_dir: Path) -> None:
    """Point torch hub at a private cache holding ``weights`` under torchvision's file name."""
    target = hub_dir / "checkpoints" / ALEXNET_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        target.unlink()
    target.symlink_to(weights.resolve())
    torch.hub.set_dir(str(hub_dir))


def setup_lpips(weights: str, hub_dir: Path) -> bool:
    """Make nerfacto's LPIPS real or absent before any model is built; True if it is real."""
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ConfigError(f"lpips_weights={weights} does not exist")
        use_weights_file(path, hub_dir)
    elif not cached_weights().is_file():
        reason = _download()
        if reason is not None:
            print(
                f"LPIPS unavailable: AlexNet weights not in {cached_weights()} and the download failed "
                f"({reason}); LPIPS is not logged. Pass lpips_weights=/path/to/{ALEXNET_FILE} to enable it.",
                flush=True,
            )
            disable_lpips()
            return False
    restore_lpips()
    log.info("LPIPS(alex) with AlexNet weights from %s", cached_weights())
    return True


class AbsentLPIPS(torch.nn.Module):
    """Stands in for torchmetrics' LPIPS: no weights needed; its value is dropped from the metrics."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.tensor(float("nan"))


_ORIGINALS: dict[str, Any] = {}


def disable_lpips() -> None:
    """Swap torchmetrics' LPIPS (nerfacto imports it inside ``populate_modules``) and drop the metric."""
    import torchmetrics.image.lpip
    from nerfstudio.models.nerfacto import NerfactoModel

    if _ORIGINALS:
        return
    _ORIGINALS["lpips"] = torchmetrics.image.lpip.LearnedPerceptualImagePatchSimilarity
    _ORIGINALS["metrics"] = original = NerfactoModel.get_image_metrics_and_images

    @functools.wraps(original)
    def without_lpips(self: Any, outputs: Any, batch: Any) -> Any:
        metrics, images = original(self, outputs, batch)
        metrics.pop("lpips", None)
        return metrics, images

    torchmetrics.image.lpip.LearnedPerceptualImagePatchSimilarity = AbsentLPIPS
    NerfactoModel.get_image_metrics_and_images = without_lpips


def restore_lpips() -> None:
    """Undo :func:`disable_lpips` (a later run in the same process has the weights)."""
    import torchmetrics.image.lpip
    from nerfstudio.models.nerfacto import NerfactoModel

    if _ORIGINALS:
        torchmetrics.image.lpip.LearnedPerceptualImagePatchSimilarity = _ORIGINALS.pop("lpips")
        NerfactoModel.get_image_metrics_and_images = _ORIGINALS.pop("metrics")
