"""Per-structure statistics of a label map: size, intensities and bounding box.

The layout follows TotalSegmentator's ``statistics.json`` (``{name: {"volume": mm³,
"intensity": mean}}``, with its two keys meaning the same: volume in cubic millimetres, mean
intensity, both 0.0 for an empty structure) and adds, per structure: the label value, voxel
count, volume in ml, the standard deviation, median and 5th / 95th percentiles of the
intensities, and the bounding box as inclusive voxel indices and in world RAS millimetres (the
extent of the box's voxel centres; for an oblique grid, the axis-aligned box around them).
Intensities are the input volume's values (Hounsfield units for CT). Statistics that an empty
structure does not have are null.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sammoe_core.io.volumes import Volume, apply_affine

PERCENTILES = (5, 50, 95)


def _bounding_box(mask: np.ndarray, affine: np.ndarray) -> tuple[dict[str, list[int]], dict[str, list[float]]]:
    lower, upper = [], []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        occupied = np.flatnonzero(mask.any(axis=others))
        lower.append(int(occupied[0]))
        upper.append(int(occupied[-1]))
    corners = np.array(np.meshgrid(*zip(lower, upper), indexing="ij")).reshape(3, -1).T
    mm = apply_affine(affine, corners)
    return (
        {"min": lower, "max": upper},
        {"min": [round(float(v), 3) for v in mm.min(axis=0)], "max": [round(float(v), 3) for v in mm.max(axis=0)]},
    )


def structure_statistics(mask: np.ndarray, volume: Volume, label: int) -> dict[str, Any]:
    """The statistics of one structure (``mask``: boolean, on ``volume``'s grid)."""
    count = int(np.count_nonzero(mask))
    voxel_mm3 = float(abs(np.linalg.det(volume.affine[:3, :3])))
    stats: dict[str, Any] = {
        "volume": round(count * voxel_mm3, 3),
        "intensity": 0.0,
        "label": label,
        "voxel_count": count,
        "volume_ml": round(count * voxel_mm3 / 1000.0, 4),
        "intensity_mean": None,
        "intensity_std": None,
        "intensity_median": None,
        "intensity_p05": None,
        "intensity_p95": None,
        "bbox_voxels": None,
        "bbox_mm": None,
    }
    if count == 0:
        return stats
    values = volume.array[mask].astype(np.float64)
    p05, median, p95 = (round(float(v), 3) for v in np.percentile(values, PERCENTILES))
    mean = round(float(values.mean()), 3)
    stats.update(
        intensity=mean,
        intensity_mean=mean,
        intensity_std=round(float(values.std()), 3),
        intensity_median=median,
        intensity_p05=p05,
        intensity_p95=p95,
    )
    stats["bbox_voxels"], stats["bbox_mm"] = _bounding_box(mask, volume.affine)
    return stats


def label_map_statistics(label_map: np.ndarray, volume: Volume, targets: list[tuple[str, int]]) -> dict[str, Any]:
    """``{name: statistics}`` for every (name, label value) in ``targets``, in their order."""
    return {name: structure_statistics(label_map == label, volume, label) for name, label in targets}
