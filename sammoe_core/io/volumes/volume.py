"""The :class:`Volume`: one 3D image on its own grid, checked once when it is made.

A volume is the input grid that every output must land on exactly: the voxel array (axis order
as stored in the file), the 4x4 affine from voxel indices to world RAS millimetres, and the
file's original header (kept so that label maps can copy it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from sammoe_core.errors import InputError


class VolumeError(InputError):
    """A volume that cannot be used: the message names the file and the problem."""


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D float32 array, its voxel-to-RAS-mm affine, and the source file's header (or None)."""

    array: np.ndarray
    affine: np.ndarray
    header: Any = None
    source: str = "<array>"

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.array.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size along each array axis, mm."""
        return cast(np.ndarray, np.linalg.norm(self.affine[:3, :3], axis=0))


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(int(n)) for n in shape)


def checked_shape(shape: tuple[int, ...], source: str) -> tuple[int, int, int]:
    """The 3D shape a stored shape stands for; trailing singleton axes (x, y, z, 1) are dropped.

    Raises :class:`VolumeError` for zero-size axes, 2D data (fewer than two voxels along an axis
    of the three) and 4D data.
    """
    shape = tuple(int(n) for n in shape)
    if any(n == 0 for n in shape):
        raise VolumeError(f"{source}: zero-size axis (shape {_shape_text(shape)})")
    core = list(shape)
    while len(core) > 3 and core[-1] == 1:
        core.pop()
    if len(core) > 3:
        raise VolumeError(f"{source}: {len(core)}D data (shape {_shape_text(shape)}); a single 3D volume is needed")
    if len(core) < 3 or min(core) < 2:
        raise VolumeError(f"{source}: 2D data (shape {_shape_text(shape)}); a 3D volume is needed")
    return tuple(core)  # type: ignore[return-value]


def make_volume(array: Any, affine: Any, header: Any = None, source: str = "<array>") -> Volume:
    """Check an array and affine and wrap them as a :class:`Volume` (float32, C order)."""
    array = np.asarray(array)
    if array.dtype.kind not in "buif":
        raise VolumeError(f"{source}: unsupported voxel type {array.dtype} (need real numbers)")
    shape = checked_shape(array.shape, source)
    array = np.ascontiguousarray(array.reshape(shape), dtype=np.float32)
    bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise VolumeError(f"{source}: {bad} NaN/Inf voxel(s); every voxel must be a finite number")
    _check_intensities(array, source)
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.isfinite(affine).all():
        raise VolumeError(f"{source}: the affine must be a finite 4x4 matrix")
    if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise VolumeError(f"{source}: the affine is singular (a zero voxel size or collinear axes)")
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    if np.any(spacing < 1e-3) or np.any(spacing > 1e3):
        shown = ", ".join(f"{s:.3g}" for s in spacing)
        raise VolumeError(f"{source}: voxel sizes ({shown}) mm outside 0.001-1000 mm; the header is wrong")
    return Volume(array=array, affine=affine, header=header, source=source)


def _check_intensities(array: np.ndarray, source: str) -> None:
    """Refuse magnitudes beyond any CT or MR scale (they would turn every normalised crop, and
    the gate's probabilities, into NaN); NaN and infinity are refused before this."""
    from sammoe_core.io.limits import MAX_ABS_INTENSITY

    peak = float(np.abs(array).max()) if array.size else 0.0
    if peak > MAX_ABS_INTENSITY:
        raise VolumeError(
            f"{source}: intensities up to {peak:.3g}, beyond any CT or MR scale (limit {MAX_ABS_INTENSITY:.0e}); "
            "the file is corrupt or needs rescaling"
        )
