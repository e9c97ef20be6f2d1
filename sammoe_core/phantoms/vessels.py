"""Great vessels: the contrast-filled aorta (labelled), iliac arteries, inferior vena cava and iliac veins.

The aorta rises from the heart (ascending aorta, right of the midline), arches backwards over
the left main bronchus to the left of the trachea and esophagus, descends in front of the
vertebral bodies left of the midline and ends at its bifurcation near L4; the common and
external iliac arteries beyond it are body, as in whole-body atlases.
"""

from __future__ import annotations

import numpy as np

from sammoe_core.phantoms.body import BODY, Torso
from sammoe_core.phantoms.canvas import Canvas
from sammoe_core.phantoms.labels import LABELS
from sammoe_core.phantoms.shapes import Capsule, Tube, paint_each
from sammoe_core.phantoms.skeleton import Spine
from sammoe_core.phantoms.tissues import Tissue

AORTA = LABELS["aorta"]
IVC = LABELS["ivc"]
BIFURCATION_Z = 175.0


def paint_aorta(canvas: Canvas, torso: Torso, spine: Spine, rng: np.random.Generator) -> None:
    """The aorta from its root in the heart to its bifurcation, then the iliac arteries."""
    size = rng.uniform(0.88, 1.12)
    bifurcation = rng.normal(BIFURCATION_Z, 8.0)
    z = np.array([bifurcation, 250.0, 350.0, 450.0, 565.0])
    radius = np.array([9.5, 10.5, 11.0, 12.0, 12.5]) * size
    x = spine.centre_x(z) + np.array([-8.0, -10.0, -12.0, -18.0, -22.0]) + rng.normal(0.0, 2.0)
    y = spine.front_y(z) + radius + 1.0
    descending = Tube(z, x, y, radius, radius)
    arch_radius = 13.0 * size
    top = np.array([x[-1], y[-1], z[-1]])
    root = np.array([14.0, 30.0, 495.0]) + rng.normal(0.0, 2.5, 3)
    ascending_top = np.array([root[0], root[1], 560.0])
    ascending = Capsule(root, ascending_top, 14.0 * size)
    bend = [
        ascending_top + [-10.0, 4.0, 25.0],
        np.array([-18.0, 22.0, 597.0]),
        np.array([-27.0, 2.0, 594.0]),
        top + [-4.0, 2.0, 15.0],
    ]
    points = [ascending_top] + [p + rng.normal(0.0, 2.0, 3) for p in bend] + [top]
    arch = [Capsule(a, b, arch_radius) for a, b in zip(points[:-1], points[1:])]
    paint_each(canvas, [descending, ascending, *arch], Tissue.ARTERIAL_BLOOD, AORTA, within_body=torso.cavity_level)
    split = np.array([x[0], y[0], bifurcation])
    iliacs = []
    for side in (+1, -1):
        common_end = np.array([side * 45.0, y[0] - 5.0, 95.0]) + rng.normal(0.0, 3.0, 3)
        groin = np.array([side * 75.0, 45.0, 5.0]) + rng.normal(0.0, 3.0, 3)
        iliacs += [Capsule(split, common_end, 6.5 * size), Capsule(common_end, groin, 5.0 * size)]
    paint_each(canvas, iliacs, Tissue.ARTERIAL_BLOOD, BODY, within_body=torso.cavity_level)


def paint_veins(canvas: Canvas, torso: Torso, spine: Spine, rng: np.random.Generator) -> None:
    """Inferior vena cava (right of the aorta, through the back of the liver into the right
    atrium) and the common iliac veins."""
    z = np.array([160.0, 260.0, 360.0, 440.0, 478.0])
    x = spine.centre_x(z) + np.array([18.0, 22.0, 26.0, 22.0, 18.0]) + rng.normal(0.0, 2.0)
    y = spine.front_y(z) + np.array([9.0, 11.0, 8.0, 16.0, 32.0]) + rng.normal(0.0, 2.0)
    radius = np.array([10.0, 11.0, 12.0, 13.0, 13.0]) * rng.uniform(0.85, 1.15)
    cava = Tube(z, x, y, radius, radius * 0.85)
    start = np.array([x[0], y[0], z[0]])
    iliac = [
        Capsule(start, np.array([side * 45.0, y[0] - 8.0, 90.0]) + rng.normal(0.0, 3.0, 3), 7.0) for side in (+1, -1)
    ]
    paint_each(canvas, iliac, Tissue.VENOUS_BLOOD, BODY, within_body=torso.cavity_level)
    paint_each(canvas, [cava], Tissue.VENOUS_BLOOD, IVC, within_body=torso.cavity_level)
