"""The preview PNG: three orthogonal slices through each target with its mask overlaid.

Slices are shown in the closest-RAS orientation (sagittal and coronal with superior up, axial with
anterior up; coronal and axial with the patient's right on the left, as radiologists read them)
with true voxel aspect ratios.
matplotlib is imported here only, with its Agg canvas (no display, no global backend change).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .segment import SegmentationResult

_PANEL_INCHES = 3.2
_MAX_ROWS = 8


def _canonical(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Array reoriented to closest RAS, the permutation/flip used, and the voxel sizes."""
    import nibabel as nib

    ornt = nib.orientations.io_orientation(affine)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    ras_spacing = np.empty(3)
    ras_spacing[ornt[:, 0].astype(int)] = spacing
    return nib.orientations.apply_orientation(array, ornt), ornt, ras_spacing


def _display_range(array: np.ndarray, ct: bool) -> tuple[float, float]:
    if ct:
        return -160.0, 240.0
    flat = array.reshape(-1)[:: max(1, array.size // (1 << 20))]
    low, high = np.percentile(flat, [1, 99.5])
    return float(low), float(high if high > low else low + 1)


def _centre(label_map: np.ndarray, label: int, fallback: np.ndarray) -> np.ndarray:
    where = np.argwhere(label_map == label)
    if len(where):
        return np.round(where.mean(axis=0)).astype(int)
    return np.clip(np.round(fallback), 0, np.asarray(label_map.shape) - 1).astype(int)


def render_preview(result: "SegmentationResult", path: str | Path) -> None:
    """Write the PNG: one row per target (at most eight), three slices through its centre."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    volume = result.volume
    image, ornt, spacing = _canonical(volume.array, volume.affine)
    labels, _, _ = _canonical(result.label_map, volume.affine)
    low, high = _display_range(image, result.modality.modality == "ct")
    targets = result.targets[:_MAX_ROWS]
    palette = colormaps["tab10"]
    fig = Figure(figsize=(3 * _PANEL_INCHES, _PANEL_INCHES * len(targets) + 0.3))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(targets), 3, squeeze=False)
    for row, target in enumerate(targets):
        first_click = target.clicks[0].voxel if target.clicks else np.asarray(volume.shape) / 2
        click_ras = np.empty(3)
        for axis, (ras_axis, flip) in enumerate(ornt):
            n = volume.shape[axis]
            click_ras[int(ras_axis)] = first_click[axis] if flip > 0 else n - 1 - first_click[axis]
        centre = _centre(labels, target.label, click_ras)
        colour = ListedColormap([palette(row % 10)])
        views = (
            ("sagittal", image[centre[0], :, :], labels[centre[0], :, :], spacing[[1, 2]], False),
            ("coronal", image[:, centre[1], :], labels[:, centre[1], :], spacing[[0, 2]], True),
            ("axial", image[:, :, centre[2]], labels[:, :, centre[2]], spacing[[0, 1]], True),
        )
        for ax, (title, picture, mask, (sx, sy), radiological) in zip(axes[row], views):
            picture, mask = picture.T, mask.T == target.label
            if radiological:
                picture, mask = picture[:, ::-1], mask[:, ::-1]
            ax.imshow(picture, cmap="gray", vmin=low, vmax=high, origin="lower", aspect=sy / sx, interpolation="nearest")
            ax.imshow(
                np.ma.masked_where(~mask, mask), cmap=colour, alpha=0.45, origin="lower", aspect=sy / sx, interpolation="nearest"
            )
            ax.set_title(f"{target.name} (label {target.label}): {title}", fontsize=8)
            ax.set_axis_off()
    fig.suptitle(f"{Path(volume.source).name}: {result.modality.modality.upper()}", fontsize=9)
    fig.tight_layout()
    fig.savefig(str(path), format="png", dpi=80)
