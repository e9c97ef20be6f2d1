"""Intensities as the weights expect them: the CT/MR decision, the CT clamp, and the crop z-score.

Training clamped CT to [-1000, 1000] HU and then z-scored each 128³ crop with the mean and
(unbiased) standard deviation of its voxels > 0, applied to every voxel, padding included.
``auto`` decides CT from the intensities: a CT in Hounsfield units holds air (about -1000) or
a padding value below it, which no MR intensity scale reaches.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, cast

import numpy as np
import torch

from sammoe_core.errors import SammoeError
from sammoe_core.segmentation.preprocessing import Preprocessing

Modality = Literal["ct", "mr"]
MODALITY_CHOICES = ("auto", "ct", "mr")
AIR_HU = -500.0
_SAMPLE_VOXELS = 1 << 20


@dataclass(frozen=True)
class ModalityDecision:
    """Which intensity handling was used, who chose it, and why (recorded in every result)."""

    modality: Modality
    requested: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def decide_modality(array: np.ndarray, requested: str = "auto") -> ModalityDecision:
    """'ct' or 'mr' as requested, or for 'auto' from the 1st percentile of the intensities."""
    if requested in ("ct", "mr"):
        return ModalityDecision(cast(Modality, requested), requested, "given by the caller")
    if requested != "auto":
        raise SammoeError(f"modality must be one of {', '.join(MODALITY_CHOICES)}, not {requested!r}")
    flat = array.reshape(-1)
    sample = flat[:: max(1, flat.size // _SAMPLE_VOXELS)]
    low = float(np.percentile(sample, 1))
    if low <= AIR_HU:
        return ModalityDecision(
            "ct", "auto", f"1st intensity percentile {low:.0f} <= {AIR_HU:.0f}: air in Hounsfield units"
        )
    return ModalityDecision(
        "mr", "auto", f"1st intensity percentile {low:.4g} > {AIR_HU:.0f}: no air in Hounsfield units"
    )


def normalize_crop(crop: torch.Tensor, modality: Modality, preprocessing: Preprocessing) -> torch.Tensor:
    """CT clamp (CT only), then z-score with the statistics of the crop's voxels > 0."""
    if modality == "ct":
        low, high = preprocessing.ct_clip
        crop = crop.clamp(low, high)
    foreground = crop[crop > 0]
    stats = foreground if foreground.numel() > 1 else crop.reshape(-1)
    mean = stats.mean()
    std = stats.std()
    if not torch.isfinite(std) or std < 1e-6:
        std = torch.ones_like(std)
    return (crop - mean) / std
