"""The body envelope and its wall: outline along z, fat and muscle layers, diaphragm, table.

The outline is an ellipse per template level z (half-width, half-depth, a small anterior
shift), interpolated between knots. The *body level* ``(x/a)^2 + ((y-y0)/b)^2`` is 1 on the
skin; the subcutaneous fat and the muscle wall are bands of it, and inner structures are
clipped to it (organs stay inside the muscle wall, bones inside the fat).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from sammoe_core.phantoms.canvas import Canvas
from sammoe_core.phantoms.labels import LABELS
from sammoe_core.phantoms.tissues import Tissue

BODY = LABELS["body"]

# Template knots (mm): z levels with the outline's half-width (x), half-depth (y) and centre y.
_OUTLINE_Z = np.array([-250, -60, 0, 60, 130, 200, 280, 360, 440, 520, 600, 680, 950], float)
_HALF_WIDTH = np.array([160, 172, 178, 172, 158, 150, 150, 155, 160, 165, 170, 172, 172], float)
_HALF_DEPTH = np.array([105, 108, 108, 106, 102, 104, 106, 108, 110, 110, 106, 100, 100], float)
_CENTRE_Y = np.array([0, 0, 0, 0, 2, 6, 8, 6, 2, 0, -2, -4, -4], float)
_ABDOMEN = np.array([0, 0, 0, 0.3, 0.7, 1, 1, 0.8, 0.3, 0, 0, 0, 0], float)

FOV_Z = (-55.0, 668.0)  # template z range imaged: below the femoral heads to above the lung apices


@dataclass(frozen=True)
class Torso:
    """One case's body outline and wall, in template mm."""

    z: np.ndarray
    half_width: np.ndarray
    half_depth: np.ndarray
    centre_y: np.ndarray
    fat: float  # subcutaneous fat thickness, as a fraction of the outline's radius
    muscle: float  # muscle wall thickness, same unit
    fov_z: tuple[float, float]

    @property
    def cavity_level(self) -> float:
        """Body level of the inner surface of the muscle wall (organs stay inside it)."""
        return (1.0 - self.fat - self.muscle) ** 2

    @property
    def deep_level(self) -> float:
        """Body level of the inner surface of the subcutaneous fat (bones and muscles stay inside it)."""
        return (1.0 - self.fat) ** 2

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Template box of the imaged part of the body."""
        z = np.linspace(*self.fov_z, 200)
        half_width = np.interp(z, self.z, self.half_width)
        centre, half_depth = np.interp(z, self.z, self.centre_y), np.interp(z, self.z, self.half_depth)
        lo = np.array([-half_width.max(), np.min(centre - half_depth), self.fov_z[0]])
        hi = np.array([half_width.max(), np.max(centre + half_depth), self.fov_z[1]])
        return lo, hi


def draw_torso(rng: np.random.Generator, fat_range: tuple[float, float] = (0.05, 0.16)) -> Torso:
    smooth = np.convolve(rng.normal(0.0, 0.04, _OUTLINE_Z.size + 2), [0.25, 0.5, 0.25], "valid")
    belly = rng.uniform(-5.0, 25.0)
    fat = float(rng.uniform(*fat_range))
    widening = 1.0 + 0.9 * (fat - 0.08)  # fat adds to the outline instead of crowding the inside
    return Torso(
        z=_OUTLINE_Z,
        half_width=_HALF_WIDTH * (1.0 + smooth) * widening,
        half_depth=(_HALF_DEPTH * (1.0 + smooth[::-1] * 0.7) + belly * _ABDOMEN * 0.6) * widening,
        centre_y=_CENTRE_Y + belly * _ABDOMEN * 0.4,
        fat=fat,
        muscle=float(rng.uniform(0.07, 0.10)),
        fov_z=(FOV_Z[0] + rng.uniform(-15.0, 10.0), FOV_Z[1] + rng.uniform(-8.0, 15.0)),
    )


def paint_body(canvas: Canvas, torso: Torso) -> None:
    """Fill the whole grid: air outside, then fat, muscle wall and (fat-filled) body cavity.

    The outline's size is looked up once per axial slice, at the template level where the body
    axis crosses it (the pose tilts the body by a few degrees only), which keeps this
    full-volume step to a handful of array operations.
    """
    tx, ty = canvas.whole().coords(np.eye(3)[:2])
    to_world = canvas.pose.rotation @ np.diag(canvas.pose.scale)
    slice_z = canvas.grid.axes(tuple(slice(0, n) for n in canvas.grid.shape))[2]
    axis_z = (slice_z.astype(float) - canvas.pose.origin[2]) / to_world[2, 2]
    inv_a = (1.0 / np.interp(axis_z, torso.z, torso.half_width)).astype(np.float32)
    inv_b = (1.0 / np.interp(axis_z, torso.z, torso.half_depth)).astype(np.float32)
    ty -= np.interp(axis_z, torso.z, torso.centre_y).astype(np.float32)
    tx *= inv_a
    ty *= inv_b
    tx *= tx
    ty *= ty
    tx += ty
    level = tx
    canvas.body_level = level
    layer = (level > np.float32(torso.cavity_level)).view(np.uint8)
    layer += level > np.float32(torso.deep_level)
    layer += level > np.float32(1.0)
    layer_tissue = np.array([Tissue.FAT, Tissue.MUSCLE, Tissue.FAT, Tissue.AIR], dtype=np.uint8)
    canvas.tissue = layer_tissue[layer]
    canvas.labels = (layer < 3).view(np.uint8) * np.uint8(BODY)


@dataclass(frozen=True)
class Diaphragm:
    """Two domes (right higher); the surface is the upper of two downward paraboloids."""

    right_top: np.ndarray  # (x, y, z) of the right dome's summit
    left_top: np.ndarray
    curvature: float  # mm of drop per mm^2 of horizontal distance from a summit

    def height(self, tx: np.ndarray, ty: np.ndarray) -> np.ndarray:
        heights = []
        for top in (self.right_top, self.left_top):
            dx, dy = tx - np.float32(top[0]), ty - np.float32(top[1])
            heights.append(np.float32(top[2]) - np.float32(self.curvature) * (dx * dx + dy * dy))
        return cast(np.ndarray, np.maximum(heights[0], heights[1]))


def draw_diaphragm(rng: np.random.Generator) -> Diaphragm:
    right_z = rng.normal(452.0, 8.0)
    return Diaphragm(
        right_top=np.array([rng.normal(68.0, 6.0), rng.normal(0.0, 8.0), right_z]),
        left_top=np.array([rng.normal(-70.0, 6.0), rng.normal(-5.0, 8.0), right_z - rng.uniform(8.0, 25.0)]),
        curvature=float(rng.uniform(1.0 / 260.0, 1.0 / 180.0)),
    )


def paint_diaphragm(canvas: Canvas, torso: Torso, diaphragm: Diaphragm) -> None:
    """A 4 mm muscle sheet under the lungs and heart, inside the body wall."""
    lo, hi = torso.bounds()
    region = canvas.region((lo[0], lo[1], 330.0), (hi[0], hi[1], diaphragm.right_top[2] + 6.0))
    if region is None:
        return
    tx, ty, tz = region.template()
    above = tz - diaphragm.height(tx, ty)
    sheet = (above >= 0) & (above <= 4.0)
    canvas.paint(region, sheet, Tissue.MUSCLE, BODY, within_body=torso.cavity_level)


def paint_table(canvas: Canvas, rng: np.random.Generator) -> None:
    """The scanner table under the patient (outside the body, label 0): carbon shells around foam."""
    occupied_rows = np.flatnonzero(np.any(canvas.labels, axis=(0, 2)))
    if occupied_rows.size == 0:
        return
    spacing_y = canvas.grid.spacing[1]
    top = occupied_rows[0] - int(np.ceil(rng.uniform(0.0, 4.0) / spacing_y)) - 1
    shell = max(1, int(round(3.0 / spacing_y)))
    thickness = max(3 * shell, int(round(rng.uniform(35.0, 50.0) / spacing_y)))
    bottom = top - thickness
    for first, last, tissue in (
        (top - shell, top, Tissue.TABLE_SHELL),
        (bottom + shell, top - shell, Tissue.TABLE_FOAM),
        (bottom, bottom + shell, Tissue.TABLE_SHELL),
    ):
        first, last = max(first, 0), max(last, 0)
        canvas.tissue[:, first:last, :] = tissue
