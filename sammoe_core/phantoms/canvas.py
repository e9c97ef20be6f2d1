"""The surface a phantom is painted on: tissue and label arrays on the canonical grid.

Structures are painted one after another (later ones win). Each is evaluated only inside the
grid box around its template bounds (a :class:`Region`), where shapes read template coordinates
computed straight from the world axes, so a case costs little more than its full-volume steps.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from sammoe_core.phantoms.placement import Grid, Pose


class Region:
    """A box of the canonical grid, with affine maps of template coordinates on demand."""

    def __init__(self, slices: tuple[slice, ...], grid: Grid, pose: Pose) -> None:
        self.slices = slices
        self.shape = tuple(s.stop - s.start for s in slices)
        self._axes = grid.axes(slices)
        self._template_from_world = pose.template_from_world()
        self._template: list[np.ndarray] | None = None
        self._z_bins: tuple[np.ndarray, float] | None = None

    def coords(self, matrix: np.ndarray, offset: npt.ArrayLike | None = None) -> list[np.ndarray]:
        """Rows of ``matrix @ template + offset`` as float32 arrays of the region's shape."""
        matrix = np.atleast_2d(np.asarray(matrix, dtype=float))
        to_template, shift = self._template_from_world
        combined = matrix @ to_template
        constant = matrix @ shift + (0.0 if offset is None else np.asarray(offset, dtype=float))
        x, y, z = self._axes
        out = []
        for row, c in zip(combined, constant):
            plane = (np.float32(row[0]) * x + np.float32(c)) + np.float32(row[1]) * y
            out.append(plane + np.float32(row[2]) * z)
        return out

    def template(self) -> list[np.ndarray]:
        """Template coordinates ``[tx, ty, tz]`` of the region's voxels (cached: do not modify)."""
        if self._template is None:
            self._template = self.coords(np.eye(3))
        return self._template

    def template_where(self, mask: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        """Indices of the region's voxels where ``mask`` holds, and their template coordinates
        ``(3, n)``: cheaper than :meth:`template` when the mask is sparse."""
        index = np.nonzero(mask)
        world = [axis.ravel()[i].astype(float) for axis, i in zip(self._axes, index)]
        to_template, shift = self._template_from_world
        # row by row: a (3, 3) @ (3, n) product would wake BLAS threads for little work
        template = np.stack(
            [row[0] * world[0] + row[1] * world[1] + row[2] * world[2] + c for row, c in zip(to_template, shift)]
        )
        return index, template

    def z_bins(self) -> tuple[np.ndarray, float]:
        """Template z in 1 mm bins: ``(bin index per voxel, z of bin 0)`` (cached), for
        looking up quantities that vary slowly along z in a table instead of interpolating."""
        if self._z_bins is None:
            tz = self.template()[2]
            z_first = float(np.floor(tz.min()))
            self._z_bins = ((tz - np.float32(z_first - 0.5)).astype(np.int32), z_first)
        return self._z_bins


class Canvas:
    """Tissue classes and labels of one case on the canonical grid, plus the body's level map."""

    def __init__(self, grid: Grid, pose: Pose) -> None:
        self.grid = grid
        self.pose = pose
        self.tissue = np.zeros(grid.shape, dtype=np.uint8)
        self.labels = np.zeros(grid.shape, dtype=np.uint8)
        self.body_level = np.full(grid.shape, np.inf, dtype=np.float32)

    def region(self, lo: Iterable[float], hi: Iterable[float]) -> Region | None:
        """The grid box around the template box ``[lo, hi]``; None when it misses the grid."""
        world_lo, world_hi = self.pose.world_box(np.asarray(lo, float), np.asarray(hi, float))
        slices = self.grid.slices(world_lo, world_hi)
        return None if slices is None else Region(slices, self.grid, self.pose)

    def whole(self) -> Region:
        return Region(tuple(slice(0, n) for n in self.grid.shape), self.grid, self.pose)

    def paint(
        self,
        region: Region,
        mask: np.ndarray,
        tissue: int,
        label: int | None,
        within_body: float | None = None,
        over_labels: Iterable[int] | None = None,
    ) -> None:
        """Set ``tissue`` and ``label`` where ``mask`` holds in ``region``.

        ``label=None`` leaves the labels as they are. ``within_body`` keeps the paint where the
        body level is at most that value (1 is the skin); ``over_labels`` keeps it on voxels
        that currently carry one of those labels.
        """
        if within_body is not None:
            mask = mask & (self.body_level[region.slices] <= within_body)
        if over_labels is not None:
            mask = mask & np.isin(self.labels[region.slices], list(over_labels))
        self.tissue[region.slices][mask] = tissue
        if label is not None:
            self.labels[region.slices][mask] = label

    def keep_largest_pieces(self, labels: Iterable[int], tissue: int, label: int) -> None:
        """Repaint every 26-connected piece of each of ``labels`` but its largest as
        ``tissue``/``label`` (slivers that later structures cut off an organ)."""
        from scipy import ndimage

        boxes = ndimage.find_objects(self.labels)
        for value in labels:
            box = boxes[value - 1] if value <= len(boxes) else None
            if box is None:
                continue
            pieces, count = ndimage.label(self.labels[box] == value, structure=np.ones((3, 3, 3)))
            if count > 1:
                sizes = np.bincount(pieces.ravel())
                sizes[0] = 0
                stray = (pieces > 0) & (pieces != sizes.argmax())
                self.labels[box][stray] = label
                self.tissue[box][stray] = tissue
