"""Implicit shapes in template coordinates: smooth blobs, tubes along z, capsules.

Each shape has ``bounds()`` (its template box) and ``level(region)``: a float32 array that is
at most 1 inside the shape and grows outward; ``level <= k**2`` (k < 1) is a shrunken core,
which is how organs get a cortex, bones a cortical shell and tubes a lumen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt

from sammoe_core.phantoms.canvas import Canvas, Region
from sammoe_core.phantoms.placement import rotation_matrix

_WARP_REACH = 1.3  # a blob never reaches beyond this many radii from its centre


@dataclass(frozen=True)
class Blob:
    """A perturbed ellipsoid: an ellipsoid in its own axes, bent by a small quadratic warp.

    In blob units ``u = axes @ (t - centre) / radii`` the shape is ``|u + warp @ q(u)| <= 1``
    with ``q`` the six quadratic monomials (u0², u1², u2², u0u1, u0u2, u1u2), giving egg, bean
    and banana shapes; with weights of at most 0.05 it stays within ``|u| <= 1.3``, where it is
    cut so that no fold of the warp can add a far piece.
    """

    centre: np.ndarray
    radii: np.ndarray
    axes: np.ndarray
    warp: np.ndarray

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        reach = _WARP_REACH if np.any(self.warp) else 1.0
        half = np.abs(self.axes.T) @ np.asarray(self.radii) * reach
        return self.centre - half, self.centre + half

    def level(self, region: Region) -> np.ndarray:
        matrix = self.axes / np.asarray(self.radii, dtype=float)[:, None]
        u = region.coords(matrix, -matrix @ self.centre)
        squares = [c * c for c in u]
        total: np.ndarray = squares[0] + squares[1] + squares[2]
        if not np.any(self.warp):
            return total
        monomials: dict[np.intp, np.ndarray] = {}
        pairs = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))
        level = np.zeros(region.shape, dtype=np.float32)
        for axis in range(3):
            warped: npt.NDArray[np.float32] = u[axis].copy()
            for term in np.flatnonzero(self.warp[axis]):
                if term not in monomials:
                    a, b = pairs[term]
                    monomials[term] = squares[a] if a == b else u[a] * u[b]
                warped += np.float32(self.warp[axis, term]) * monomials[term]
            level += warped * warped
        return np.maximum(level, total * np.float32(1.0 / _WARP_REACH**2))


@dataclass(frozen=True)
class Tube:
    """A tube along template z: centre ``(x(z), y(z))`` and elliptic radii ``(rx(z), ry(z))``,
    linear between knots ``z`` (increasing), with flat ends at the first and last knot."""

    z: np.ndarray
    x: np.ndarray
    y: np.ndarray
    rx: np.ndarray
    ry: np.ndarray

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.array([np.min(self.x - self.rx), np.min(self.y - self.ry), self.z[0]])
        hi = np.array([np.max(self.x + self.rx), np.max(self.y + self.ry), self.z[-1]])
        return lo, hi

    def level(self, region: Region) -> np.ndarray:
        tx, ty, _ = region.template()
        bins, z_first = region.z_bins()
        bin_z = z_first + np.arange(int(bins.max()) + 1)

        def along(values: np.ndarray) -> np.ndarray:
            return cast(np.ndarray, np.interp(bin_z, self.z, values).astype(np.float32).take(bins))

        dx = (tx - along(self.x)) * along(1.0 / self.rx)
        dy = (ty - along(self.y)) * along(1.0 / self.ry)
        level: np.ndarray = dx * dx + dy * dy
        beyond_ends = np.where((bin_z < self.z[0]) | (bin_z > self.z[-1]), np.inf, 0.0)
        level += beyond_ends.astype(np.float32).take(bins)
        return level

    def grown(self, mm: float) -> Tube:
        """The same tube with both radii larger by ``mm`` (a wall around it, with the tube carved out)."""
        return Tube(self.z, self.x, self.y, self.rx + mm, self.ry + mm)


@dataclass(frozen=True)
class Capsule:
    """All points within ``radius`` of the segment from ``start`` to ``end`` (a sphere if equal)."""

    start: np.ndarray
    end: np.ndarray
    radius: float

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.minimum(self.start, self.end) - self.radius
        hi = np.maximum(self.start, self.end) + self.radius
        return lo, hi

    def level(self, region: Region) -> np.ndarray:
        start = np.asarray(self.start, dtype=float)
        direction = np.asarray(self.end, dtype=float) - start
        rel = region.coords(np.eye(3), -start)
        length2 = float(direction @ direction)
        if length2 > 0:
            (along,) = region.coords(direction / length2, -(direction @ start) / length2)
            np.clip(along, 0.0, 1.0, out=along)
            rel = [r - np.float32(d) * along for r, d in zip(rel, direction)]
        inv_r2 = np.float32(1.0 / self.radius**2)
        return cast(np.ndarray, (rel[0] * rel[0] + rel[1] * rel[1] + rel[2] * rel[2]) * inv_r2)


def random_blob(
    rng: np.random.Generator,
    centre: tuple[float, float, float],
    radii: tuple[float, float, float],
    turn_deg: tuple[float, float, float] = (0.0, 0.0, 0.0),
    centre_sd: float = 4.0,
    radius_sd: float = 0.07,
    turn_sd_deg: float = 5.0,
    warp_sd: float = 0.03,
) -> Blob:
    """A blob near ``centre`` with about these radii, turned by about ``turn_deg`` (about x, y, z)."""
    angles = np.radians(np.asarray(turn_deg, dtype=float) + rng.normal(0.0, turn_sd_deg, 3))
    warp = np.zeros((3, 6))
    if warp_sd > 0:  # two quadratic terms bend each axis
        for axis in range(3):
            terms = rng.choice(6, size=2, replace=False)
            warp[axis, terms] = np.clip(rng.normal(0.0, warp_sd, 2), -0.05, 0.05)
    return Blob(
        centre=np.asarray(centre, dtype=float) + rng.normal(0.0, centre_sd, 3),
        radii=np.asarray(radii, dtype=float) * np.exp(rng.normal(0.0, radius_sd, 3)),
        axes=rotation_matrix(angles).T,
        warp=warp,
    )


def union_level(canvas: Canvas, parts: Sequence[Blob | Tube | Capsule]) -> tuple[Region, np.ndarray] | None:
    """The smallest level of ``parts`` over the grid box around all of them (None if off the grid).

    For shapes that must look like one object (a bone's parts share one cortex); shapes that
    only share a tissue are cheaper painted one by one in their own boxes.
    """
    lo = np.minimum.reduce([part.bounds()[0] for part in parts])
    hi = np.maximum.reduce([part.bounds()[1] for part in parts])
    region = canvas.region(lo, hi)
    if region is None:
        return None
    return region, np.minimum.reduce([part.level(region) for part in parts])


def paint_each(
    canvas: Canvas,
    parts: Sequence[Blob | Tube | Capsule],
    tissue: int,
    label: int | None,
    within_body: float | None = None,
    over_labels: list[int] | None = None,
) -> None:
    """Paint every part where its level is at most 1, each evaluated in its own grid box."""
    for part in parts:
        region = canvas.region(*part.bounds())
        if region is not None:
            canvas.paint(
                region,
                part.level(region) <= 1.0,
                tissue,
                label,
                within_body=within_body,
                over_labels=over_labels,
            )
