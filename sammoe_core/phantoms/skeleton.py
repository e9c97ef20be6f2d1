"""Bones and the spinal canal: vertebral column with its canal and the spinal cord, muscles along
the spine, ribs and sternum, pelvis with the acetabular sockets, and the proximal femurs.

Labelled here: ``spinal_cord`` (a thin tube in the CSF of a bony canal, ending at the conus
medullaris near L1-L2 like a real cord) and ``hip_left``/``hip_right`` (each proximal femur:
head in its socket, neck, greater trochanter, top of the shaft). All other bone is "body".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

from sammoe_core.phantoms.body import BODY, Torso
from sammoe_core.phantoms.canvas import Canvas, Region
from sammoe_core.phantoms.labels import LABELS
from sammoe_core.phantoms.shapes import Blob, Capsule, Tube, random_blob, union_level
from sammoe_core.phantoms.tissues import Tissue

SPINAL_CORD = LABELS["spinal_cord"]
VERTEBRAE = LABELS["vertebrae"]
AUTOCHTHON = LABELS["autochthon"]
ILIOPSOAS = LABELS["iliopsoas"]
RIBS = LABELS["ribs"]
PELVIS = LABELS["pelvis"]
HIP = {+1: LABELS["hip_right"], -1: LABELS["hip_left"]}  # side +1 is the patient's right (+x)

# Template knots along z (mm): canal centre y and radii, vertebral body radii.
_SPINE_Z = np.array([-60, -20, 30, 80, 120, 200, 310, 400, 480, 560, 640, 720, 820], float)
_CANAL_Y = np.array([-92, -88, -80, -72, -62, -52, -55, -60, -64, -66, -64, -58, -55], float)
_CANAL_RX = np.array([2.5, 3, 5, 7, 10, 11, 10, 8, 7.5, 7.5, 7.5, 8, 8.5])
_CANAL_RY = np.array([2, 2.5, 3.5, 5, 8, 9, 8.5, 7.5, 7, 7, 7, 7.5, 8])
_VERTEBRA_RX = np.array([10, 15, 30, 46, 27, 25, 22, 19, 17, 15, 14, 13, 12], float)
_VERTEBRA_RY = np.array([8, 10, 14, 16, 17, 17, 16, 15, 14, 13, 12, 11, 10], float)
# Vertebra coordinate along z: 0 at the top of T1, 12 at the top of L1, 17 at the sacrum.
_VERTEBRA_LEVEL_Z = np.array([120, 310, 344, 660, 820], float)
_VERTEBRA_LEVEL = np.array([17, 12, 11, 0, -5], float)
SACRUM_TOP_Z = 120.0  # below it the vertebrae are fused (no discs)
CONUS_Z = 290.0  # the cord ends near L1-L2; the canal below holds CSF only
DISC_FRACTION = 0.2


@dataclass(frozen=True)
class Spine:
    canal: Tube
    vertebral_body: Tube
    vertebra_level_z: np.ndarray
    conus_z: float

    def front_y(self, z: np.ndarray) -> np.ndarray:
        """Template y of the vertebral bodies' anterior surface at levels ``z``."""
        body = self.vertebral_body
        return cast(np.ndarray, np.interp(z, body.z, body.y + body.ry))

    def centre_x(self, z: np.ndarray) -> np.ndarray:
        return cast(np.ndarray, np.interp(z, self.canal.z, self.canal.x))


def draw_spine(rng: np.random.Generator) -> Spine:
    z = _SPINE_Z
    bend = rng.normal(0.0, 3.0, 2)
    x = bend[0] * np.sin(np.pi * (z - 100.0) / 500.0) + bend[1] * np.sin(2 * np.pi * (z - 100.0) / 700.0)
    canal_y = _CANAL_Y + rng.normal(0.0, 3.0) + np.convolve(rng.normal(0, 2.0, z.size + 2), [1 / 3] * 3, "valid")
    canal_scale = np.exp(rng.normal(0.0, 0.06))
    canal = Tube(z, x, canal_y, _CANAL_RX * canal_scale, _CANAL_RY * canal_scale)
    body_rx = _VERTEBRA_RX * np.exp(rng.normal(0.0, 0.06))
    body_ry = _VERTEBRA_RY * np.exp(rng.normal(0.0, 0.06))
    body_y = canal_y + canal.ry + body_ry + 1.0
    return Spine(
        canal=canal,
        vertebral_body=Tube(z, x, body_y, body_rx, body_ry),
        vertebra_level_z=_VERTEBRA_LEVEL_Z + rng.normal(0.0, 6.0),
        conus_z=float(rng.normal(CONUS_Z, 12.0)),
    )


def paint_back_muscles(canvas: Canvas, torso: Torso, spine: Spine, rng: np.random.Generator) -> None:
    """Paraspinal muscles behind the column, psoas muscles beside the lumbar vertebrae."""
    z = spine.canal.z
    for side in (+1, -1):
        offset = side * rng.normal(36.0, 3.0)
        paraspinal = Tube(
            z,
            spine.canal.x + offset,
            spine.canal.y - spine.canal.ry - rng.normal(24.0, 3.0),
            np.full(z.size, rng.normal(24.0, 2.0)),
            np.full(z.size, rng.normal(18.0, 2.0)),
        )
        psoas_z = np.array([40.0, 120.0, 220.0, 330.0])
        psoas = Tube(
            psoas_z,
            spine.centre_x(psoas_z) + side * np.array([62.0, 52.0, 42.0, 30.0]),
            spine.front_y(psoas_z) - np.array([-15.0, 10.0, 20.0, 22.0]),
            np.array([20.0, 22.0, 16.0, 8.0]) * rng.uniform(0.85, 1.15),
            np.array([20.0, 20.0, 15.0, 8.0]) * rng.uniform(0.85, 1.15),
        )
        for muscle, label in ((paraspinal, AUTOCHTHON), (psoas, ILIOPSOAS)):
            region = canvas.region(*muscle.bounds())
            if region is not None:
                canvas.paint(region, muscle.level(region) <= 1.0, Tissue.MUSCLE, label, within_body=torso.deep_level)


def paint_spine(canvas: Canvas, torso: Torso, spine: Spine) -> None:
    """Vertebral bodies (cortex, marrow, discs), the bony ring and spinous processes, the CSF-filled canal."""
    canal, body = spine.canal, spine.vertebral_body
    lumbar_up = canal.z >= SACRUM_TOP_Z
    spinous = Tube(
        canal.z[lumbar_up],
        canal.x[lumbar_up],
        (canal.y - canal.ry - 15.0)[lumbar_up],
        np.full(lumbar_up.sum(), 3.5),
        np.full(lumbar_up.sum(), 11.0),
    )
    deep = torso.deep_level

    region = canvas.region(*body.bounds())
    if region is not None:
        level = body.level(region)
        disc = (_vertebra_fraction(region, spine, 0.0) < DISC_FRACTION) & _vertebra_above(region, SACRUM_TOP_Z)
        canvas.paint(region, level <= 1.0, Tissue.CORTICAL_BONE, VERTEBRAE, within_body=deep)
        canvas.paint(region, level <= 0.72**2, Tissue.MARROW, VERTEBRAE, within_body=deep)
        canvas.paint(region, (level <= 1.0) & disc, Tissue.CARTILAGE, VERTEBRAE, within_body=deep)
    region = canvas.region(*spinous.bounds())
    if region is not None:
        level = spinous.level(region)
        process = (level <= 1.0) & (_vertebra_fraction(region, spine, 0.5) >= 0.35)  # gaps between processes
        canvas.paint(region, process, Tissue.CORTICAL_BONE, VERTEBRAE, within_body=deep)
        canvas.paint(region, process & (level <= 0.25), Tissue.MARROW, VERTEBRAE, within_body=deep)
    ring = canal.grown(5.0)
    region = canvas.region(*ring.bounds())
    if region is not None:
        canvas.paint(region, ring.level(region) <= 1.0, Tissue.CORTICAL_BONE, VERTEBRAE, within_body=deep)
        canvas.paint(region, canal.level(region) <= 1.0, Tissue.CSF, BODY, within_body=deep)


def _vertebra_fraction(region: Region, spine: Spine, shift: float) -> np.ndarray:
    """Position within its vertebra (0 to 1, discs first) of each voxel, shifted by ``shift`` vertebrae."""
    bins, z_first = region.z_bins()
    bin_z = z_first + np.arange(int(bins.max()) + 1)
    vertebra = np.interp(bin_z, spine.vertebra_level_z, _VERTEBRA_LEVEL) + shift
    return cast(np.ndarray, (vertebra - np.floor(vertebra)).astype(np.float32).take(bins))


def _vertebra_above(region: Region, z: float) -> np.ndarray:
    bins, z_first = region.z_bins()
    return (z_first + np.arange(int(bins.max()) + 1) >= z).take(bins)


def paint_cord(canvas: Canvas, torso: Torso, spine: Spine, rng: np.random.Generator) -> None:
    """The spinal cord: from above the field of view down to the conus, tapering at its end."""
    canal, conus = spine.canal, spine.conus_z
    z = np.concatenate([[conus, conus + 25.0], canal.z[canal.z > conus + 25.0]])
    size = np.exp(rng.normal(0.0, 0.06))
    rx = np.interp(z, [conus, conus + 25.0, 480.0, 620.0, 820.0], [2.3, 4.2, 4.3, 5.2, 6.0]) * size
    ry = np.interp(z, [conus, conus + 25.0, 480.0, 620.0, 820.0], [2.2, 3.8, 3.8, 4.0, 4.5]) * size
    cord = Tube(z, np.interp(z, canal.z, canal.x), np.interp(z, canal.z, canal.y), rx, ry)
    region = canvas.region(*cord.bounds())
    if region is not None:
        canvas.paint(region, cord.level(region) <= 1.0, Tissue.CORD, SPINAL_CORD, within_body=torso.deep_level)


def paint_chest_wall(canvas: Canvas, torso: Torso, rng: np.random.Generator) -> None:
    """Ribs in the inner half of the muscle wall (sloping down anteriorly), costal cartilage, sternum."""
    lo, hi = torso.bounds()
    region = canvas.region((lo[0], lo[1], 300.0), (hi[0], hi[1], hi[2] + 40.0))
    if region is None:
        return
    inner = 1.0 - torso.fat - torso.muscle
    level = canvas.body_level[region.slices]
    band = (level >= np.float32(inner**2)) & (level <= np.float32((inner + 0.05) ** 2))
    index, (tx, ty, tz) = region.template_where(band)
    period = rng.uniform(25.0, 30.0)
    sloped_z = tz + rng.uniform(0.25, 0.35) * ty
    phase = (sloped_z - rng.uniform(0.0, period)) / period
    rib = (phase - np.floor(phase) < rng.uniform(0.32, 0.4)) & (sloped_z >= rng.uniform(365.0, 385.0))
    front = ty > 50.0
    for keep, tissue, label in (
        (rib & ~front, Tissue.CORTICAL_BONE, RIBS),
        (rib & front & (np.abs(tx) > 18.0), Tissue.CARTILAGE, BODY),
    ):
        mask = np.zeros(region.shape, dtype=bool)
        mask[tuple(i[keep] for i in index)] = True
        canvas.paint(region, mask, tissue, label)
    front_y = float(np.interp(555.0, torso.z, torso.half_depth) * inner + np.interp(555.0, torso.z, torso.centre_y))
    sternum = random_blob(rng, (0.0, front_y - 2.0, 555.0), (14.0, 7.0, 80.0), centre_sd=1.5, warp_sd=0.0)
    paint_bone(canvas, [sternum], core=0.6, label=BODY, within_body=torso.deep_level)


def paint_bone(canvas: Canvas, parts: Sequence[Blob | Capsule], core: float, label: int, within_body: float) -> None:
    """Paint the union of ``parts`` as cortical bone around a marrow core (level <= core**2)."""
    found = union_level(canvas, parts)
    if found is None:
        return
    region, level = found
    canvas.paint(region, level <= 1.0, Tissue.CORTICAL_BONE, label, within_body=within_body)
    canvas.paint(region, level <= core**2, Tissue.MARROW, label, within_body=within_body)


def draw_femoral_heads(rng: np.random.Generator) -> dict[int, tuple[np.ndarray, float]]:
    """Centre and radius of each femoral head (template z = 0 is their mean level)."""
    heads = {}
    for side in (+1, -1):
        centre = np.array([side * rng.normal(88.0, 4.0), rng.normal(8.0, 3.0), rng.normal(0.0, 3.0)])
        heads[side] = (centre, float(rng.uniform(21.0, 25.0)))
    return heads


def paint_pelvis(
    canvas: Canvas, torso: Torso, heads: dict[int, tuple[np.ndarray, float]], rng: np.random.Generator
) -> None:
    """Per side: acetabular socket (bony cup around the head, cartilage joint space), the bone
    column above it, the iliac wing, the pubic ramus and the ischium."""
    deep = torso.deep_level
    for side, (head, radius) in heads.items():
        joint = radius + rng.uniform(2.0, 3.0)
        cup = Capsule(head, head, joint + rng.uniform(5.0, 8.0))
        region = canvas.region(*cup.bounds())
        if region is not None:
            level = cup.level(region)
            facing = np.array([-side, 0.0, 0.9]) / np.hypot(1.0, 0.9)
            (height,) = region.coords(facing[None, :], [-(facing @ head)])
            socket = (level <= 1.0) & (height >= np.float32(-0.3 * cup.radius))
            canvas.paint(region, socket, Tissue.CORTICAL_BONE, PELVIS, within_body=deep)
            inner = (joint / cup.radius) ** 2
            canvas.paint(region, socket & (level <= inner), Tissue.CARTILAGE, BODY, within_body=deep)
        column = random_blob(rng, tuple(head + [-side * 6.0, -10.0, 44.0]), (20.0, 24.0, 36.0), centre_sd=2.0)
        wing = _iliac_wing(rng, side)
        pubis = Capsule(
            head + [-side * 18.0, 24.0, -10.0],
            np.array([side * 7.0, 60.0, -22.0]) + rng.normal(0, 3, 3),
            rng.uniform(8.0, 10.0),
        )
        ischium = Capsule(
            head + [-side * 6.0, -20.0, -16.0],
            np.array([side * 55.0, -35.0, -58.0]) + rng.normal(0, 3, 3),
            rng.uniform(10.0, 12.0),
        )
        for bone, core in ((wing, 0.55), (column, 0.55), (pubis, 0.5), (ischium, 0.5)):
            paint_bone(canvas, [bone], core=core, label=PELVIS, within_body=deep)


def _iliac_wing(rng: np.random.Generator, side: int) -> Blob:
    """A thin plate from the sacroiliac joint to the anterior iliac spine, its top flaring out."""
    along = np.array([side * 73.0, 92.0, 0.0])
    along /= np.linalg.norm(along)
    normal0 = np.array([along[1], -along[0], 0.0])
    up0 = np.array([0.0, 0.0, 1.0])
    flare = np.radians(-side * rng.uniform(15.0, 25.0))
    normal = np.cos(flare) * normal0 + np.sin(flare) * up0
    up = -np.sin(flare) * normal0 + np.cos(flare) * up0
    return Blob(
        centre=np.array([side * 100.0, -22.0, 122.0]) + rng.normal(0, 3, 3),
        radii=np.array([7.0, 64.0, 52.0]) * np.exp(rng.normal(0, 0.05, 3)),
        axes=np.stack([normal, along, up]),
        warp=np.zeros((3, 6)),
    )


def paint_femurs(
    canvas: Canvas, torso: Torso, heads: dict[int, tuple[np.ndarray, float]], rng: np.random.Generator
) -> None:
    """Each proximal femur, labelled hip_right / hip_left: head, neck, greater trochanter, shaft."""
    for side, (head, radius) in heads.items():
        neck_end = head + [side * 40.0, -6.0, -28.0] + rng.normal(0, 2, 3)
        parts: list[Blob | Capsule] = [
            Capsule(head, head, radius),
            Capsule(head, neck_end, radius * rng.uniform(0.58, 0.66)),
            random_blob(rng, tuple(head + [side * 55.0, -14.0, -22.0]), (15.0, 19.0, 24.0), centre_sd=2.0),
            Capsule(head + [side * 54.0, -8.0, -40.0], head + [side * 44.0, 2.0, -260.0], rng.uniform(13.0, 15.0)),
        ]
        paint_bone(canvas, parts, core=0.8, label=HIP[side], within_body=torso.deep_level)
