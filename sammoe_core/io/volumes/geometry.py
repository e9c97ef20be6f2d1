"""Geometry between the input grid, the model lattice and crops, and the one resampling function.

* The **input grid** maps voxel indices (array axis order) to world RAS mm by the file's affine.
* The **model lattice** has the input's own axes, reordered and flipped to lie closest to R, A
  and S (nibabel's closest canonical, as training's ``ToCanonical``: an oblique input keeps its
  tilt), an isotropic spacing (the model's 1.5 mm) and index 0 at an anchor point (the prompt).
* A **crop** is an S³ block of the lattice starting at an integer lattice index; crop voxel
  ``v`` is lattice index ``start + v``, and its tensor axes are the lattice axes (R, A, S).

Every resampling, image to crop and prediction back to the input grid, goes through
:func:`resample`: trilinear or nearest sampling at points given by an affine index map, with the
constant 0 outside the source (a voxel's extent is its index ± 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast, overload

import numpy as np
import torch
import torch.nn.functional as F

_CHUNK_VOXELS = 1 << 20


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 affine to (..., 3) points."""
    points = np.asarray(points, dtype=np.float64)
    return cast(np.ndarray, points @ matrix[:3, :3].T + matrix[:3, 3])


def ras_directions(affine: np.ndarray) -> np.ndarray:
    """3x3 matrix whose columns are unit vectors of the input's axes closest to R, A and S."""
    import nibabel as nib

    columns = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    directions = np.zeros((3, 3))
    for axis, (ras_axis, flip) in enumerate(nib.orientations.io_orientation(affine)):
        directions[:, int(ras_axis)] = columns[:, axis] * flip
    return directions


@dataclass(frozen=True, eq=False)
class Lattice:
    """An isotropic grid along the input's closest-RAS axes; ``affine`` maps lattice index -> mm."""

    affine: np.ndarray

    @classmethod
    def anchored(cls, input_affine: np.ndarray, anchor_mm: np.ndarray, spacing_mm: float) -> Lattice:
        """The lattice of ``input_affine``'s orientation at ``spacing_mm`` with index 0 at ``anchor_mm``."""
        affine = np.eye(4)
        affine[:3, :3] = ras_directions(input_affine) * spacing_mm
        affine[:3, 3] = anchor_mm
        return cls(affine)

    def index_of(self, mm: np.ndarray) -> np.ndarray:
        """World RAS mm (..., 3) -> continuous lattice indices."""
        return apply_affine(np.linalg.inv(self.affine), mm)

    def mm_of(self, index: np.ndarray) -> np.ndarray:
        return apply_affine(self.affine, index)


def input_extent(shape: tuple[int, ...], index_map: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounding box, in another grid's indices, of a grid's voxels (extent ±0.5 around indices).

    ``index_map`` maps this grid's indices to the other grid's.
    """
    corners = np.array(np.meshgrid(*[[-0.5, n - 0.5] for n in shape], indexing="ij")).reshape(3, -1).T
    mapped = apply_affine(index_map, corners)
    return mapped.min(axis=0), mapped.max(axis=0)


@overload
def resample(
    source: torch.Tensor,
    index_map: np.ndarray,
    shape: tuple[int, int, int],
    start: np.ndarray | tuple[int, int, int] = ...,
    mode: str = ...,
    return_inside: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def resample(
    source: torch.Tensor,
    index_map: np.ndarray,
    shape: tuple[int, int, int],
    start: np.ndarray | tuple[int, int, int] = ...,
    mode: str = ...,
    *,
    return_inside: Literal[True],
) -> tuple[torch.Tensor, torch.Tensor]: ...


def resample(
    source: torch.Tensor,
    index_map: np.ndarray,
    shape: tuple[int, int, int],
    start: np.ndarray | tuple[int, int, int] = (0, 0, 0),
    mode: str = "linear",
    return_inside: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Sample ``source`` (3D) at ``index_map @ (start + v)`` for every index ``v`` of ``shape``.

    ``mode`` is 'linear' (trilinear) or 'nearest'. Points outside the source's extent
    (index < -0.5 or > n - 0.5 on an axis) get 0; ``return_inside`` also returns that test.
    The result lies on ``source``'s device. When the map only reorders, flips, scales and shifts
    axes (always so between an input grid and its model lattice) the sampling runs axis by axis,
    on just the block of ``source`` it reads: nearest picks exactly the voxels ``grid_sample``
    picks, linear agrees with it to float rounding. Other maps go through ``grid_sample`` in
    slabs, so that large outputs need little extra memory.
    """
    if mode not in ("linear", "nearest"):
        raise ValueError(f"mode must be 'linear' or 'nearest', not {mode!r}")
    offset = apply_affine(index_map, np.asarray(start, dtype=np.float64))
    axes = _axis_permutation(index_map[:3, :3])
    if axes is not None:
        out, inside = _resample_separable(source, index_map, axes, offset, shape, mode)
    else:
        out, inside = _resample_grid(source, index_map, offset, shape, mode)
    return (out, inside) if return_inside else out


def _axis_permutation(rotation: np.ndarray) -> list[int] | None:
    """For each output axis, the one source axis it moves along; None for an oblique map."""
    scale = np.abs(rotation).max()
    if not np.isfinite(scale) or scale == 0:
        return None
    nonzero = np.abs(rotation) > scale * 1e-9
    if not (nonzero.sum(axis=0) == 1).all() or not (nonzero.sum(axis=1) == 1).all():
        return None
    return [int(np.flatnonzero(nonzero[:, a])[0]) for a in range(3)]


def _grid_coordinates(coords: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """Source indices -> the normalised coordinates ``grid_sample`` takes (float32; ``sizes`` a
    float32 tensor, as a division by a Python number may round differently)."""
    return (2 * coords + 1) / sizes - 1


def _source_positions(coords: torch.Tensor, size: int, mode: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """1D sampling along one source axis: lower index, upper index and upper weight per point.

    The positions are those ``grid_sample`` (align_corners=False, border padding) computes; for
    'nearest' it is asked directly, on a ramp of indices, so the picks are its own."""
    grid = _grid_coordinates(coords, torch.tensor(float(size), device=coords.device))
    if mode == "nearest":
        ramp = torch.arange(size, dtype=torch.float32, device=coords.device).view(1, 1, 1, 1, size)
        points = torch.stack([grid, torch.zeros_like(grid), torch.zeros_like(grid)], dim=-1)
        picked = F.grid_sample(
            ramp, points.view(1, 1, 1, -1, 3), mode="nearest", padding_mode="border", align_corners=False
        )
        index = picked.view(-1).long()
        return index, index, torch.zeros_like(grid)
    position = (((grid + 1) * size - 1) / 2).clamp(0, size - 1)
    lower = position.floor()
    return lower.long(), (lower.long() + 1).clamp_max(size - 1), position - lower


def _resample_separable(
    source: torch.Tensor,
    index_map: np.ndarray,
    axes: list[int],
    offset: np.ndarray,
    shape: tuple[int, int, int],
    mode: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`resample` for maps that move each output axis along one source axis."""
    device = source.device
    picks, inside = [], torch.ones(shape, dtype=torch.bool, device=device)
    for a, k in enumerate(axes):
        step = torch.tensor(float(index_map[k, a]), dtype=torch.float32)
        coords = torch.arange(shape[a], dtype=torch.float32) * step + torch.tensor(offset[k], dtype=torch.float32)
        coords = coords.to(device)
        size = source.shape[k]
        within = (coords >= -0.5) & (coords <= size - 0.5)
        inside &= within.view([-1 if d == a else 1 for d in range(3)])
        picks.append(_source_positions(coords, size, mode))
    # the block of the source that is read, its axes in output order
    block = source.permute(*axes)
    for a, (lower, upper, _) in enumerate(picks):
        first, last = int(lower.min()), int(upper.max()) + 1
        block = block.narrow(a, first, last - first)
        picks[a] = (lower - first, upper - first, picks[a][2])
    block = block.to(torch.float32)
    # shrink first: the axes the map downsamples most go first
    order = sorted(range(3), key=lambda a: block.shape[a] / shape[a], reverse=True)
    for a in order:
        lower, upper, weight = picks[a]
        low = block.index_select(a, lower)
        if mode == "nearest":
            block = low
            continue
        view = [-1 if d == a else 1 for d in range(3)]
        block = low + (block.index_select(a, upper) - low) * weight.view(view)
    return block * inside, inside


def _resample_grid(
    source: torch.Tensor, index_map: np.ndarray, offset: np.ndarray, shape: tuple[int, int, int], mode: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`resample` for any affine map, through ``grid_sample`` in slabs."""
    device = source.device
    sizes = torch.tensor(source.shape, dtype=torch.float32, device=device)
    src = source.to(torch.float32)[None, None]
    rotation = torch.from_numpy(np.ascontiguousarray(index_map[:3, :3], dtype=np.float32)).to(device)
    shift = torch.from_numpy(offset.astype(np.float32)).to(device)
    axis1 = torch.arange(shape[1], dtype=torch.float32, device=device)[None, :, None, None] * rotation[:, 1]
    axis2 = torch.arange(shape[2], dtype=torch.float32, device=device)[None, None, :, None] * rotation[:, 2]
    plane = axis1 + axis2 + shift
    out = torch.empty(shape, dtype=torch.float32, device=device)
    inside_out = torch.empty(shape, dtype=torch.bool, device=device)
    rows = max(1, _CHUNK_VOXELS // max(1, shape[1] * shape[2]))
    for first in range(0, shape[0], rows):
        axis0 = torch.arange(first, min(first + rows, shape[0]), dtype=torch.float32, device=device)
        coords = plane + axis0[:, None, None, None] * rotation[:, 0]
        inside = ((coords >= -0.5) & (coords <= sizes - 0.5)).all(dim=-1)
        grid = _grid_coordinates(coords, sizes).flip(-1)
        values = F.grid_sample(
            src,
            grid[None],
            mode="bilinear" if mode == "linear" else "nearest",
            padding_mode="border",
            align_corners=False,
        )[0, 0]
        out[first : first + len(axis0)] = values * inside
        inside_out[first : first + len(axis0)] = inside
    return out, inside_out
