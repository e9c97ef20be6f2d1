"""The preview PNG: three orthogonal slices through each target with its mask and clicks drawn.

One row per target (at most eight). The slices go through the target's first positive click (the
voxel the user pointed at, so they always show what the model was asked about); a target with no
positive click uses its box centre, then the mask voxel nearest the mask's centroid, then the
volume centre. Each mask is filled and outlined in a saturated colour that stands out on CT and MR
greyscale (:func:`target_colours`: one colour per label value, fixed palette); clicks lying on a
slice are marked (positive: white filled plus, negative: black filled cross, each with a
contrasting edge). One legend names every target with its label value and colour and says what
the markers mean. Panel titles are short ("axial k=12": the slice's input voxel index), and the
figure uses constrained layout so that no title or legend overlaps another.

Slices are shown in the closest-RAS orientation (sagittal and coronal with superior up, axial with
anterior up; coronal and axial with the patient's right on the left, as radiologists read them)
with true voxel aspect ratios.
matplotlib is imported here only, with its Agg canvas (no display, no global backend change).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from sammoe_core.segmentation.pipeline import SegmentationResult, TargetResult

_PANEL_INCHES = 3.2
_ROW_HEADING_INCHES = 0.3
_KEY_INCHES = 0.5
_MAX_ROWS = 8
_NAME_CHARS = 40
# Saturated, clearly different hues; no grey, near-white or near-black entry (label 1 is red,
# 2 green, 3 blue, ...). A label value keeps its entry unless an earlier row already holds it.
PALETTE = (
    "#e6194b",  # red
    "#3cb44b",  # green
    "#4363d8",  # blue
    "#ffe119",  # yellow
    "#f032e6",  # magenta
    "#42d4f4",  # cyan
    "#f58231",  # orange
    "#911eb4",  # purple
    "#bfef45",  # lime
    "#14b8a6",  # teal
)
_POSITIVE: dict[str, Any] = {"marker": "P", "markerfacecolor": "white", "markeredgecolor": "black"}
_NEGATIVE: dict[str, Any] = {"marker": "X", "markerfacecolor": "black", "markeredgecolor": "white"}
_VIEWS = ("sagittal", "coronal", "axial")


def _canonical(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Array reoriented to closest RAS, the permutation/flip used, and the voxel sizes."""
    import nibabel as nib

    ornt = _orientation(affine)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    ras_spacing = np.empty(3)
    ras_spacing[ornt[:, 0].astype(int)] = spacing
    return nib.orientations.apply_orientation(array, ornt), ornt, ras_spacing


def _orientation(affine: np.ndarray) -> np.ndarray:
    """Per input axis: the closest-RAS axis it runs along and whether it runs backwards (-1)."""
    import nibabel as nib

    return cast(np.ndarray, nib.orientations.io_orientation(affine))


def _to_ras(voxel: np.ndarray, ornt: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Input voxel coordinates (float) -> coordinates on the closest-RAS grid (float)."""
    ras = np.empty(3)
    for axis, (ras_axis, flip) in enumerate(ornt):
        ras[int(ras_axis)] = voxel[axis] if flip > 0 else shape[axis] - 1 - voxel[axis]
    return ras


def _ras_shape(ornt: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Shape of the closest-RAS grid."""
    ras_shape = np.empty(3, dtype=int)
    ras_shape[ornt[:, 0].astype(int)] = shape
    return ras_shape


def _voxel_index(voxel: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The input voxel holding a point (a voxel's extent is its index +-0.5), clipped to the volume."""
    return np.clip(np.floor(np.asarray(voxel, dtype=np.float64) + 0.5), 0, np.asarray(shape) - 1).astype(int)


def _input_point(result: SegmentationResult, target: TargetResult) -> np.ndarray:
    """Input voxel index the slices of a target go through (see :func:`slice_point`)."""
    shape = result.volume.shape
    positives = [c for c in target.clicks if c.positive]
    chosen = [c for c in positives if not c.from_box] or positives
    if chosen:
        return _voxel_index(chosen[0].voxel, shape)
    if target.box and target.box.get("voxel"):
        return _voxel_index(np.mean(np.asarray(target.box["voxel"], dtype=np.float64), axis=0), shape)
    where = np.argwhere(result.label_map == target.label)
    if len(where):
        spacing = result.volume.spacing
        centroid = where.mean(axis=0)
        # the centroid of a mask in pieces can lie outside it: take the mask voxel nearest to it
        return cast(np.ndarray, where[int(np.argmin((((where - centroid) * spacing) ** 2).sum(axis=1)))].astype(int))
    return _voxel_index((np.asarray(shape) - 1) / 2, shape)


def slice_point(result: SegmentationResult, target: TargetResult) -> np.ndarray:
    """Voxel index on the closest-RAS grid that a target's three slices go through.

    Its first positive click (one the user gave before a box centre made into a click); with
    none (a box alone), its box centre; with no box either, the mask voxel nearest the mask's
    centroid; with an empty mask, the volume centre. Element 0 is the sagittal slice, 1 the
    coronal, 2 the axial.
    """
    volume = result.volume
    ornt = _orientation(volume.affine)
    return cast(
        np.ndarray, np.rint(_to_ras(_input_point(result, target).astype(np.float64), ornt, volume.shape)).astype(int)
    )


def target_colours(targets: list[TargetResult]) -> dict[int, tuple[float, float, float]]:
    """RGB colour of each target's label value: ``PALETTE[(label - 1) % len(PALETTE)]``.

    When that entry is already taken by an earlier target (labels 1 and 11, say), the next free
    entry is used, so the first ``len(PALETTE)`` targets never share a colour.
    """
    from matplotlib.colors import to_rgb

    taken: set[int] = set()
    colours: dict[int, tuple[float, float, float]] = {}
    for target in targets:
        if target.label in colours:
            continue
        index = (target.label - 1) % len(PALETTE)
        if len(taken) < len(PALETTE):
            while index in taken:
                index = (index + 1) % len(PALETTE)
        taken.add(index)
        colours[target.label] = to_rgb(PALETTE[index])
    return colours


def _display_range(array: np.ndarray, ct: bool) -> tuple[float, float]:
    if ct:
        return -160.0, 240.0
    flat = array.reshape(-1)[:: max(1, array.size // (1 << 20))]
    low, high = np.percentile(flat, [1, 99.5])
    return float(low), float(high if high > low else low + 1)


def _plain(text: str, limit: int = _NAME_CHARS) -> str:
    """User text shown as typed: no mathtext, no control characters, at most ``limit`` characters."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(text))
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return text.replace("$", r"\$")


def _heading(target: TargetResult) -> str:
    return f"{_plain(target.name)} (label {target.label})"


def _panel(ras: np.ndarray, view: int, shape_ras: np.ndarray) -> tuple[float, float]:
    """Where a closest-RAS point lies in the picture of one view (x, y of imshow, origin lower)."""
    if view == 0:  # sagittal: anterior to the right, superior up
        return float(ras[1]), float(ras[2])
    flipped = float(shape_ras[0] - 1 - ras[0])  # patient's right on the left
    return (flipped, float(ras[2])) if view == 1 else (flipped, float(ras[1]))


def _draw_clicks(
    ax: Any, target: TargetResult, view: int, index: int, ornt: np.ndarray, shape: tuple[int, ...]
) -> None:
    """Mark the target's clicks that lie in this slice."""
    shape_ras = _ras_shape(ornt, shape)
    for click in target.clicks:
        voxel = _voxel_index(click.voxel, shape)
        if int(round(_to_ras(voxel.astype(np.float64), ornt, shape)[view])) != index:
            continue
        x, y = _panel(_to_ras(np.asarray(click.voxel, dtype=np.float64), ornt, shape), view, shape_ras)
        style = _POSITIVE if click.positive else _NEGATIVE
        ax.plot([x], [y], linestyle="none", markersize=9, markeredgewidth=1.3, zorder=5, **style)


def _draw_box(
    ax: Any, target: TargetResult, view: int, index: int, ornt: np.ndarray, shape: tuple[int, ...], colour: Any
) -> None:
    """Outline the target's box, dashed, on a slice that cuts it."""
    from matplotlib.patches import Rectangle

    if not target.box or not target.box.get("voxel"):
        return
    corners = [_to_ras(np.asarray(c, dtype=np.float64), ornt, shape) for c in target.box["voxel"]]
    low, high = np.minimum(*corners), np.maximum(*corners)
    if not low[view] - 0.5 <= index <= high[view] + 0.5:
        return
    shape_ras = _ras_shape(ornt, shape)
    (x0, y0), (x1, y1) = _panel(low, view, shape_ras), _panel(high, view, shape_ras)
    ax.add_patch(
        Rectangle(
            (min(x0, x1), min(y0, y1)),
            abs(x1 - x0),
            abs(y1 - y0),
            fill=False,
            edgecolor=colour,
            linestyle="--",
            linewidth=1.2,
            zorder=4,
        )
    )


def preview_figure(result: SegmentationResult) -> Figure:
    """The preview as a matplotlib Figure on an Agg canvas (what :func:`render_preview` saves)."""
    from matplotlib import patheffects
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    volume = result.volume
    image, ornt, spacing = _canonical(volume.array, volume.affine)
    labels, _, _ = _canonical(result.label_map, volume.affine)
    low, high = _display_range(image, result.modality.modality == "ct")
    targets = result.targets[:_MAX_ROWS]
    colours = target_colours(targets)
    rows = max(1, len(targets))
    height = rows * (_PANEL_INCHES + _ROW_HEADING_INCHES) + _KEY_INCHES + 0.3 + 0.2 * (1 + (len(targets) + 2) // 3)
    fig = Figure(figsize=(3 * _PANEL_INCHES, height), layout="constrained")
    canvas = FigureCanvasAgg(fig)
    shown = "" if len(result.targets) <= _MAX_ROWS else f" (first {_MAX_ROWS} of {len(result.targets)} targets)"
    fig.suptitle(f"{_plain(Path(volume.source).name, 60)}: {result.modality.modality.upper()}{shown}", fontsize=10)
    ratios = [_KEY_INCHES] + [_PANEL_INCHES + _ROW_HEADING_INCHES] * rows
    top, *subfigures = fig.subfigures(rows + 1, 1, height_ratios=ratios, squeeze=False)[:, 0]
    outline = [patheffects.Stroke(linewidth=2.8, foreground="black"), patheffects.Normal()]
    for target, row in zip(targets, subfigures[: len(targets)]):
        colour = colours[target.label]
        row.suptitle(_heading(target), fontsize=9, fontweight="bold")
        point = slice_point(result, target)
        views = (
            (image[point[0], :, :], labels[point[0], :, :], spacing[[1, 2]], False),
            (image[:, point[1], :], labels[:, point[1], :], spacing[[0, 2]], True),
            (image[:, :, point[2]], labels[:, :, point[2]], spacing[[0, 1]], True),
        )
        for view, (ax, (picture, mask, (sx, sy), radiological)) in enumerate(zip(row.subplots(1, 3), views)):
            picture, mask = picture.T, mask.T == target.label
            if radiological:
                picture, mask = picture[:, ::-1], mask[:, ::-1]
            ax.imshow(
                picture, cmap="gray", vmin=low, vmax=high, origin="lower", aspect=sy / sx, interpolation="nearest"
            )
            ax.imshow(
                np.ma.masked_where(~mask, mask),
                cmap=ListedColormap([colour]),
                alpha=0.4,
                origin="lower",
                aspect=sy / sx,
                interpolation="nearest",
            )
            if mask.any() and min(mask.shape) > 1:
                contour = ax.contour(mask.astype(np.float32), levels=[0.5], colors=[colour], linewidths=1.3)
                contour.set_path_effects(outline)
            _draw_box(ax, target, view, int(point[view]), ornt, volume.shape, colour)
            _draw_clicks(ax, target, view, int(point[view]), ornt, volume.shape)
            axis = int(np.flatnonzero(ornt[:, 0] == view)[0])
            input_index = point[view] if ornt[axis, 1] > 0 else volume.shape[axis] - 1 - point[view]
            ax.set_title(f"{_VIEWS[view]} {'ijk'[axis]}={int(input_index)}", fontsize=8)
            ax.set_axis_off()
    swatches = [Patch(facecolor=colours[t.label], edgecolor="black", linewidth=0.6, label=_heading(t)) for t in targets]
    for ncols in range(min(4, len(swatches)), 0, -1):  # as many columns as the figure's width holds
        legend = fig.legend(handles=swatches, loc="outside lower center", ncols=ncols, fontsize=8, frameon=False)
        if ncols == 1 or legend.get_window_extent(canvas.get_renderer()).width <= 0.98 * fig.bbox.width:
            break
        legend.remove()
    key: list[Any] = [
        Line2D([], [], linestyle="none", markersize=9, markeredgewidth=1.3, label="positive click", **_POSITIVE),
        Line2D([], [], linestyle="none", markersize=9, markeredgewidth=1.3, label="negative click", **_NEGATIVE),
    ]
    if any(t.box for t in targets):
        key.append(Line2D([], [], color="black", linestyle="--", linewidth=1.2, label="box"))
    top.legend(
        handles=key,
        loc="center",
        ncols=len(key),
        fontsize=8,
        frameon=False,
        title="slices through the first positive click (else box centre or mask); i, j, k: input voxel indices",
        title_fontsize=8,
    )
    return fig


def render_preview(result: SegmentationResult, path: str | Path) -> None:
    """Write the PNG: one row per target (at most eight), three slices through its first click."""
    preview_figure(result).savefig(str(path), format="png", dpi=80)
