"""The abdomen and pelvis: liver, gallbladder, spleen, stomach, pancreas, kidneys, bladder, bowel.

Labelled here: ``liver`` (right upper quadrant under the right dome, its left lobe across the
midline, with portal/hepatic vessels inside the label), ``spleen`` (left, posterior, under the
left dome), ``kidney_right``/``kidney_left`` (beside the upper lumbar spine, the right one
lower; cortex around medulla, fat in the hilum) and ``bladder`` (behind the pubis; wall and
urine). Bowel loops, colon, rectum, stomach, gallbladder and pancreas are body.
"""

from __future__ import annotations

import numpy as np

from sammoe_core.phantoms.body import BODY, Diaphragm, Torso
from sammoe_core.phantoms.canvas import Canvas, Region
from sammoe_core.phantoms.labels import LABELS
from sammoe_core.phantoms.shapes import Blob, Capsule, Tube, paint_each, random_blob, union_level
from sammoe_core.phantoms.tissues import Tissue

LIVER = LABELS["liver"]
SPLEEN = LABELS["spleen"]
KIDNEY = {+1: LABELS["kidney_right"], -1: LABELS["kidney_left"]}
BLADDER = LABELS["bladder"]
STOMACH = LABELS["stomach"]
PANCREAS = LABELS["pancreas"]
GALLBLADDER = LABELS["gallbladder"]
BOWEL = LABELS["bowel"]


def _below_diaphragm(
    canvas: Canvas, blob_parts: list[Blob], diaphragm: Diaphragm
) -> tuple[Region, np.ndarray, np.ndarray] | None:
    """The blob's region and level, and where the region lies under the diaphragm."""
    found = union_level(canvas, blob_parts)
    if found is None:
        return None
    region, level = found
    tx, ty, tz = region.template()
    return region, level, tz < diaphragm.height(tx, ty) - np.float32(1.0)


def paint_bowel(canvas: Canvas, torso: Torso, rng: np.random.Generator) -> None:
    """Small-bowel loops, colon and rectum: soft-tissue walls around fluid, gas or faeces."""
    loops = [
        random_blob(
            rng,
            (rng.uniform(-105, 105), rng.uniform(-10, 80), rng.uniform(105, 320)),
            tuple(rng.uniform(10.0, 24.0, 3)),
            centre_sd=0.0,
            radius_sd=0.0,
            warp_sd=0.04,
        )
        for _ in range(int(rng.integers(16, 28)))
    ]
    colon: list[Tube | Capsule] = [
        Tube(
            np.array([140.0, 330.0]),
            np.array([95.0, 92.0]) + rng.normal(0, 4),
            np.array([0.0, 5.0]) + rng.normal(0, 4),
            np.full(2, rng.uniform(16.0, 23.0)),
            np.full(2, rng.uniform(16.0, 23.0)),
        ),
        Tube(
            np.array([120.0, 350.0]),
            np.array([-96.0, -92.0]) + rng.normal(0, 4),
            np.array([-5.0, 0.0]) + rng.normal(0, 4),
            np.full(2, rng.uniform(14.0, 20.0)),
            np.full(2, rng.uniform(14.0, 20.0)),
        ),
        Capsule(
            np.array([92.0, 20.0, 330.0]) + rng.normal(0, 4, 3),
            np.array([-92.0, 28.0, 350.0]) + rng.normal(0, 4, 3),
            rng.uniform(15.0, 21.0),
        ),
    ]
    rectum = random_blob(rng, (0.0, -26.0, 42.0), (17.0, 15.0, 38.0), turn_deg=(15.0, 0.0, 0.0), centre_sd=3.0)
    contents = (Tissue.FLUID, Tissue.AIR, Tissue.FECES)
    bowel: list[Blob | Tube | Capsule] = [*loops, *colon, rectum]
    for part in bowel:
        region = canvas.region(*part.bounds())
        if region is None:
            continue
        level = part.level(region)
        content = contents[int(rng.choice(3, p=[0.45, 0.25, 0.3]))]
        canvas.paint(region, level <= 1.0, Tissue.SOFT, BOWEL, within_body=torso.cavity_level)
        canvas.paint(region, level <= 0.7**2, content, BOWEL, within_body=torso.cavity_level)


def paint_stomach_and_pancreas(canvas: Canvas, torso: Torso, diaphragm: Diaphragm, rng: np.random.Generator) -> None:
    """Stomach (wall, fluid, an anterior gas cap: the patient lies supine) and the pancreas behind it."""
    stomach = random_blob(rng, (-50.0, 20.0, 370.0), (42.0, 38.0, 55.0), turn_deg=(0.0, -15.0, 20.0))
    found = _below_diaphragm(canvas, [stomach], diaphragm)
    if found is not None:
        region, level, below = found
        _, ty, _ = region.template()
        gas = ty > np.float32(stomach.centre[1] + rng.uniform(0.1, 0.9) * stomach.radii[1])
        inner = below & (level <= 0.75**2)
        canvas.paint(region, below & (level <= 1.0), Tissue.SOFT, STOMACH, within_body=torso.cavity_level)
        canvas.paint(region, inner, Tissue.FLUID, STOMACH, within_body=torso.cavity_level)
        canvas.paint(region, inner & gas, Tissue.AIR, STOMACH, within_body=torso.cavity_level)
    tail, body, head = (
        np.array(p) + rng.normal(0.0, 3.0, 3) for p in ((-70.0, -10.0, 345.0), (-20.0, 8.0, 335.0), (25.0, 5.0, 318.0))
    )
    radius = rng.uniform(9.0, 12.0)
    paint_each(
        canvas,
        [Capsule(tail, body, radius), Capsule(body, head, radius)],
        Tissue.PANCREAS,
        PANCREAS,
        within_body=torso.cavity_level,
    )


def paint_liver(canvas: Canvas, torso: Torso, diaphragm: Diaphragm, rng: np.random.Generator) -> None:
    """Liver (right lobe and left lobe under the domes) with vessels inside, then the gallbladder."""
    right = random_blob(rng, (62.0, 8.0, 372.0), (72.0, 80.0, 75.0), turn_deg=(0.0, 0.0, -10.0), radius_sd=0.06)
    left = random_blob(rng, (-5.0, 42.0, 395.0), (60.0, 34.0, 34.0), turn_deg=(0.0, 15.0, 10.0), radius_sd=0.08)
    slant = rng.uniform(0.35, 0.55)  # the inferior margin rises from the right flank to the left lobe
    for lobe in (right, left):
        found = _below_diaphragm(canvas, [lobe], diaphragm)
        if found is None:
            continue
        region, level, below = found
        tx, _, tz = region.template()
        floor = np.float32(right.centre[2] - 0.9 * right.radii[2]) + np.float32(slant) * (
            np.float32(right.centre[0]) - tx
        )
        canvas.paint(region, below & (level <= 1.0) & (tz > floor), Tissue.LIVER, LIVER, within_body=torso.cavity_level)
    hilum = np.array([25.0, 10.0, 350.0]) + rng.normal(0.0, 4.0, 3)
    vessels = []
    for _ in range(int(rng.integers(4, 8))):
        direction = rng.normal(0.0, 1.0, 3) + [0.8, 0.0, 0.5]
        direction /= np.linalg.norm(direction)
        vessels.append(Capsule(hilum, hilum + rng.uniform(40.0, 85.0) * direction, rng.uniform(2.5, 5.5)))
    paint_each(canvas, vessels, Tissue.VENOUS_BLOOD, None, over_labels=[LIVER])
    gallbladder = random_blob(rng, (52.0, 50.0, 318.0), (15.0, 15.0, 30.0), turn_deg=(25.0, 0.0, 0.0))
    paint_each(canvas, [gallbladder], Tissue.BILE, GALLBLADDER, within_body=torso.cavity_level)


def paint_spleen(canvas: Canvas, torso: Torso, diaphragm: Diaphragm, rng: np.random.Generator) -> None:
    """Spleen: a curved blob high in the left flank, behind the stomach, under the left dome."""
    spleen = random_blob(rng, (-86.0, -36.0, 378.0), (24.0, 46.0, 52.0), turn_deg=(0.0, 0.0, 35.0), warp_sd=0.04)
    found = _below_diaphragm(canvas, [spleen], diaphragm)
    if found is not None:
        region, level, below = found
        canvas.paint(region, below & (level <= 1.0), Tissue.SPLEEN, SPLEEN, within_body=torso.cavity_level)


def paint_kidneys(canvas: Canvas, torso: Torso, rng: np.random.Generator) -> None:
    """Kidneys: upper poles tilted inward, hilum facing forward-inward; cortex, medulla, sinus fat."""
    for side, label in KIDNEY.items():
        centre_z = 268.0 if side > 0 else 285.0
        kidney = random_blob(
            rng,
            (side * 74.0, -32.0, centre_z),
            (27.0, 21.0, 54.0),
            turn_deg=(0.0, -side * 12.0, side * 25.0),
            radius_sd=0.06,
        )
        region = canvas.region(*kidney.bounds())
        if region is None:
            continue
        level = kidney.level(region)
        canvas.paint(region, level <= 1.0, Tissue.KIDNEY_CORTEX, label, within_body=torso.cavity_level)
        canvas.paint(region, level <= 0.62**2, Tissue.KIDNEY_MEDULLA, label, over_labels=[label])
        sinus_centre = kidney.centre + kidney.axes.T @ np.array([-side * 20.0, 6.0, 0.0])
        sinus = Blob(sinus_centre, np.array([12.0, 10.0, 22.0]), kidney.axes, np.zeros((3, 6)))
        paint_each(canvas, [sinus], Tissue.FAT, BODY, over_labels=[label])


def paint_bladder(canvas: Canvas, torso: Torso, rng: np.random.Generator) -> None:
    """Bladder behind the pubis, filled to a random volume: a thin wall around urine, both labelled."""
    fill = rng.uniform(0.7, 1.2)
    bladder = random_blob(
        rng, (0.0, 48.0, 40.0 + 12.0 * (fill - 1.0)), (44.0 * fill, 36.0 * fill, 34.0 * fill), centre_sd=3.0
    )
    region = canvas.region(*bladder.bounds())
    if region is None:
        return
    level = bladder.level(region)
    canvas.paint(region, level <= 1.0, Tissue.SOFT, BLADDER, within_body=torso.cavity_level)
    canvas.paint(region, level <= 0.9**2, Tissue.URINE, BLADDER, within_body=torso.cavity_level)
