"""What a model expects of its input crops, as data (stored in expert manifests too).

The defaults are SAM-Med3D's training-time preprocessing: canonical RAS orientation, 1.5 mm
isotropic voxels (linear interpolation for the image), a 128³ crop centred on the prompt with
constant-0 padding, CT clamped to [-1000, 1000], then z-score over the crop's voxels > 0.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Preprocessing(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    orientation: Literal["RAS"] = "RAS"
    spacing_mm: float = Field(1.5, gt=0, description="isotropic voxel size of the crop")
    crop_size: int = Field(128, gt=0, description="edge of the cubic crop, voxels")
    ct_clip: tuple[float, float] = Field((-1000.0, 1000.0), description="HU window applied to CT")
    normalization: Literal["zscore_positive"] = Field(
        "zscore_positive", description="z-score with mean/std of the crop's voxels > 0"
    )
