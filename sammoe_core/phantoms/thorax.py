"""The chest: lungs with their vessels, the heart, trachea and main bronchi, the esophagus.

Labelled here: ``lung_right``/``lung_left`` (each in its half of the chest, above the
diaphragm, filling the cavity up to the ribs) and ``esophagus`` (a thin muscular tube with an
air lumen, in front of the vertebral bodies, crossing in front of the descending aorta to the
left, ending in the stomach below the diaphragm).
"""

from __future__ import annotations

import numpy as np

from sammoe_core.phantoms.body import Diaphragm, Torso
from sammoe_core.phantoms.canvas import Canvas
from sammoe_core.phantoms.labels import LABELS
from sammoe_core.phantoms.shapes import Capsule, Tube, paint_each, random_blob
from sammoe_core.phantoms.skeleton import Spine
from sammoe_core.phantoms.tissues import Tissue

LUNG = {+1: LABELS["lung_right"], -1: LABELS["lung_left"]}
ESOPHAGUS = LABELS["esophagus"]
HEART = LABELS["heart"]
TRACHEA = LABELS["trachea"]
GE_JUNCTION_Z = 385.0  # the esophagus enters the stomach here (below the left dome)
CARINA_Z = 545.0


def paint_lungs(canvas: Canvas, torso: Torso, diaphragm: Diaphragm, rng: np.random.Generator) -> None:
    """Each lung: a blob in its half of the chest, cut by the diaphragm, with branching vessels."""
    for side, label in LUNG.items():
        lung = random_blob(rng, (side * 82.0, -5.0, 520.0), (74.0, 96.0, 140.0), radius_sd=0.05, warp_sd=0.0)
        lo, hi = lung.bounds()
        if side > 0:
            lo[0] = max(lo[0], 0.0)
        else:
            hi[0] = min(hi[0], 0.0)
        region = canvas.region(lo, hi)
        if region is None:
            continue
        tx, ty, tz = region.template()
        inside = (lung.level(region) <= 1.0) & (tz > diaphragm.height(tx, ty) + np.float32(4.0))
        inside &= np.float32(side) * tx > np.float32(4.0)
        canvas.paint(region, inside, Tissue.LUNG, label, within_body=torso.cavity_level)
        hilum = np.array([side * 45.0, 0.0, 500.0]) + rng.normal(0.0, 4.0, 3)
        vessels = []
        for _ in range(int(rng.integers(6, 10))):
            direction = rng.normal(0.0, 1.0, 3) * [0.8, 1.0, 1.2] + [side * 0.9, 0.0, 0.0]
            direction /= np.linalg.norm(direction)
            vessels.append(Capsule(hilum, hilum + rng.uniform(50.0, 110.0) * direction, rng.uniform(2.0, 4.5)))
        paint_each(canvas, vessels, Tissue.VENOUS_BLOOD, None, over_labels=[label])


def paint_heart(canvas: Canvas, torso: Torso, diaphragm: Diaphragm, rng: np.random.Generator) -> None:
    """Myocardium around contrast-filled chambers, resting on the diaphragm, apex to the left."""
    heart = random_blob(rng, (-22.0, 45.0, 490.0), (58.0, 48.0, 60.0), turn_deg=(0.0, 20.0, -30.0))
    region = canvas.region(*heart.bounds())
    if region is None:
        return
    tx, ty, tz = region.template()
    level = heart.level(region)
    above = tz > diaphragm.height(tx, ty) + np.float32(4.0)
    canvas.paint(region, (level <= 1.0) & above, Tissue.MYOCARDIUM, HEART, within_body=torso.cavity_level)
    canvas.paint(region, (level <= 0.62**2) & above, Tissue.HEART_BLOOD, HEART, within_body=torso.cavity_level)


def paint_airways(canvas: Canvas, torso: Torso, spine: Spine, rng: np.random.Generator) -> None:
    """Trachea (down to the carina) and the two main bronchi: air lumens in soft-tissue walls."""
    carina = rng.normal(CARINA_Z, 8.0)
    z = np.array([carina, 640.0, 760.0, 900.0])
    x = spine.centre_x(z) + rng.normal(1.0, 2.0)
    y = spine.front_y(z) + 30.0 + rng.normal(0.0, 2.0)
    radius = rng.uniform(7.5, 10.0)
    lumen = Tube(z, x, y, np.full(4, radius), np.full(4, radius * 0.85))
    split = np.array([x[0], y[0], carina])
    bronchi = [
        Capsule(split, split + [side * 45.0, -8.0, -32.0] + rng.normal(0.0, 3.0, 3), radius * 0.7) for side in (+1, -1)
    ]
    walls = [lumen.grown(2.0)] + [Capsule(b.start, b.end, b.radius + 1.5) for b in bronchi]
    paint_each(canvas, walls, Tissue.SOFT, TRACHEA, within_body=torso.cavity_level)
    paint_each(canvas, [lumen, *bronchi], Tissue.AIR, TRACHEA, within_body=torso.cavity_level)


def paint_esophagus(canvas: Canvas, torso: Torso, spine: Spine, rng: np.random.Generator) -> None:
    """The esophagus: a muscular tube with a (sometimes collapsed) air lumen, from above the
    field of view down to the gastro-esophageal junction inside the stomach."""
    junction = GE_JUNCTION_Z + rng.normal(0.0, 5.0)
    z = np.array([junction, junction + 15.0, 430.0, 470.0, 520.0, 600.0, 700.0, 900.0])
    x = spine.centre_x(z) + np.array([-36.0, -28.0, -14.0, 2.0, 4.0, 4.0, 2.0, 0.0]) + rng.normal(0.0, 2.0)
    y = spine.front_y(z) + np.array([40.0, 40.0, 36.0, 24.0, 13.0, 9.0, 9.0, 10.0]) + rng.normal(0.0, 1.5)
    size = rng.uniform(0.9, 1.15)
    wall = Tube(z, x, y, np.full(z.size, 9.0 * size), np.full(z.size, 7.0 * size))
    lumen_rx = rng.uniform(1.5, 9.0 * size - 3.5)
    lumen_ry = rng.uniform(1.0, 7.0 * size - 3.0)
    lumen = Tube(z, x, y, np.full(z.size, lumen_rx), np.full(z.size, lumen_ry))
    region = canvas.region(*wall.bounds())
    if region is None:
        return
    canvas.paint(region, wall.level(region) <= 1.0, Tissue.ESOPHAGUS_WALL, ESOPHAGUS, within_body=torso.cavity_level)
    canvas.paint(region, lumen.level(region) <= 1.0, Tissue.AIR, ESOPHAGUS, within_body=torso.cavity_level)
