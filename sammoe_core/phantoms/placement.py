"""Where a phantom lies in the world and how it is sampled: pose, voxel grid, header orientation.

Coordinates are world RAS+ millimetres (the NIfTI/nibabel convention): +x towards the
patient's Right, +y Anterior, +z Superior. The anatomy is drawn in *template* coordinates
(same axis meanings, an average torso, femoral-head centres at z = 0); a :class:`Pose` scales,
rotates and places the template in the world. Volumes are first sampled on a *canonical* grid
whose array axes run along world +x, +y, +z; :func:`reorient` then stores them in any axis
order and direction, changing the affine so that every voxel keeps its world position.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import cast

import numpy as np

from sammoe_core.errors import SammoeError

SPACING_RANGE_MM = (0.7, 3.0)


@dataclass(frozen=True)
class Pose:
    """The template in the world: ``world = origin + rotation @ (scale * template)``."""

    rotation: np.ndarray
    scale: np.ndarray
    origin: np.ndarray

    def template_from_world(self) -> tuple[np.ndarray, np.ndarray]:
        """``(M, m)`` with ``template = M @ world + m``."""
        matrix = np.diag(1.0 / self.scale) @ self.rotation.T
        return matrix, -matrix @ self.origin

    def world_from_template(self, points: np.ndarray) -> np.ndarray:
        """Template points ``(N, 3)`` to world points ``(N, 3)``."""
        return cast(np.ndarray, self.origin + (np.asarray(points) * self.scale) @ self.rotation.T)

    def world_box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The world axis-aligned box around the template box ``[lo, hi]``."""
        corners = np.array(list(product(*zip(lo, hi))), dtype=float)
        world = self.world_from_template(corners)
        return world.min(axis=0), world.max(axis=0)


def rotation_matrix(angles_rad: np.ndarray) -> np.ndarray:
    """Rotation about x, then y, then z by the given angles (radians)."""
    ax, ay, az = angles_rad
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return cast(np.ndarray, rz @ ry @ rx)


@dataclass(frozen=True)
class Grid:
    """The canonical voxel grid: array axes along world +x, +y, +z; voxel (0,0,0) centred at ``origin``."""

    origin: np.ndarray
    spacing: np.ndarray
    shape: tuple[int, int, int]

    @classmethod
    def covering(cls, lo: np.ndarray, hi: np.ndarray, spacing: np.ndarray) -> Grid:
        """The grid of voxels of ``spacing`` that covers the world box ``[lo, hi]``."""
        spacing = np.asarray(spacing, dtype=float)
        shape = cast(tuple[int, int, int], tuple(int(n) for n in np.maximum(np.ceil((hi - lo) / spacing), 1)))
        return cls(origin=lo + spacing / 2, spacing=spacing, shape=shape)

    @property
    def affine(self) -> np.ndarray:
        affine = np.eye(4)
        affine[:3, :3] = np.diag(self.spacing)
        affine[:3, 3] = self.origin
        return affine

    def slices(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, ...] | None:
        """Index slices of the voxels whose centres lie in the world box ``[lo, hi]``; None if none."""
        first = np.maximum(np.ceil((lo - self.origin) / self.spacing), 0).astype(int)
        last = np.minimum(np.floor((hi - self.origin) / self.spacing), np.array(self.shape) - 1)
        last = last.astype(int)
        if np.any(last < first):
            return None
        return tuple(slice(a, b + 1) for a, b in zip(first, last))

    def axes(self, slices: tuple[slice, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World coordinates of the voxel centres in ``slices``, shaped (n,1,1), (1,n,1), (1,1,n)."""
        axes = []
        for dim, sl in enumerate(slices):
            coords = self.origin[dim] + self.spacing[dim] * np.arange(sl.start, sl.stop)
            shape = [1, 1, 1]
            shape[dim] = coords.size
            axes.append(coords.astype(np.float32).reshape(shape))
        return axes[0], axes[1], axes[2]


def draw_spacing(rng: np.random.Generator, extent_mm: np.ndarray, max_voxels: int) -> np.ndarray:
    """A random anisotropic spacing in ``SPACING_RANGE_MM`` that keeps the box under ``max_voxels``.

    Each axis is drawn log-uniformly; if the box would hold too many voxels, every axis still
    below the upper bound is coarsened by a common factor (the voxel budget wins over fine
    sampling, as a whole torso at 0.7 mm would hold tens of millions of voxels).
    """
    lo, hi = SPACING_RANGE_MM
    if np.prod(np.ceil(extent_mm / hi)) > max_voxels:
        raise SammoeError(
            f"max_voxels={max_voxels} is too small: the field of view needs "
            f"{int(np.prod(np.ceil(extent_mm / hi)))} voxels at {hi} mm"
        )
    spacing = np.exp(rng.uniform(np.log(lo), np.log(hi), size=3))
    for _ in range(20):
        voxels = np.prod(np.ceil(extent_mm / spacing))
        if voxels <= max_voxels:
            break
        free = spacing < hi
        factor = (voxels / max_voxels) ** (1.0 / free.sum()) * 1.001
        spacing = np.where(free, np.minimum(spacing * factor, hi), spacing)
    return spacing


AXIS_CODES = (("L", "R"), ("P", "A"), ("I", "S"))


def draw_orientation(rng: np.random.Generator) -> str:
    """A random header orientation as nibabel axis codes, e.g. ``"PSL"``."""
    order = rng.permutation(3)
    return "".join(AXIS_CODES[axis][int(rng.integers(2))] for axis in order)


def reorient(arrays: list[np.ndarray], affine: np.ndarray, axcodes: str) -> tuple[list[np.ndarray], np.ndarray]:
    """Store canonical (RAS) ``arrays`` in the orientation ``axcodes``; returns them and their affine.

    World coordinates are unchanged: ``new_affine @ new_index`` is the world point that
    ``affine @ old_index`` was.
    """
    from nibabel import orientations

    codes = tuple(axcodes.upper())
    axes = sorted(dim for code in codes for dim, pair in enumerate(AXIS_CODES) if code in pair)
    if len(codes) != 3 or axes != [0, 1, 2]:
        raise SammoeError(f"orientation {axcodes!r}: need three axis codes, one each of L/R, P/A, I/S")
    transform = orientations.ornt_transform(
        orientations.axcodes2ornt(("R", "A", "S")), orientations.axcodes2ornt(codes)
    )
    shape = arrays[0].shape
    moved = [np.ascontiguousarray(orientations.apply_orientation(a, transform)) for a in arrays]
    return moved, affine @ orientations.inv_ornt_aff(transform, shape)
