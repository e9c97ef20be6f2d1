"""A smooth random displacement of a painted canvas: organ shapes, sizes and positions vary.

The field is drawn on a coarse lattice of control points (one every ``spacing_mm``), smoothed,
scaled to the drawn amplitude and interpolated (linear) to every voxel; tissue and label maps
are then resampled through it with nearest neighbour, so every voxel keeps a single tissue and
label and thin structures stay whole.
"""

from __future__ import annotations

import numpy as np


def displacement_field(
    shape: tuple[int, int, int], spacing: np.ndarray, amplitude_mm: float, spacing_mm: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """Per-axis displacement in voxels (float32 arrays of ``shape``)."""
    from scipy import ndimage

    coarse = tuple(max(2, int(np.ceil(n * s / spacing_mm)) + 1) for n, s in zip(shape, spacing))
    out = []
    for axis in range(3):
        field = ndimage.gaussian_filter(rng.standard_normal(coarse), 0.7, mode="nearest")
        field *= amplitude_mm / max(float(np.abs(field).max()), 1e-6) / spacing[axis]
        zoom = [n / c for n, c in zip(shape, coarse)]
        out.append(
            ndimage.zoom(field.astype(np.float32), zoom, order=1, mode="nearest", grid_mode=True)[
                : shape[0], : shape[1], : shape[2]
            ]
        )
    return out


def deform(arrays: list[np.ndarray], field: list[np.ndarray]) -> list[np.ndarray]:
    """``arrays`` (same shape) resampled at ``index + field`` with nearest neighbour."""
    shape = arrays[0].shape
    index = np.indices(shape, dtype=np.float32)
    coords = []
    for axis in range(3):
        c = index[axis] + field[axis]
        np.rint(c, out=c)
        np.clip(c, 0, shape[axis] - 1, out=c)
        coords.append(c.astype(np.intp))
    del index
    return [a[coords[0], coords[1], coords[2]] for a in arrays]
