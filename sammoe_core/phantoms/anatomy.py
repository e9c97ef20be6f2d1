"""The painting order of a torso: what covers what, from the body wall out to the table.

Later structures win where two overlap, so structures that carve organs in real anatomy (the
IVC behind the liver, the spine, the ribs) come after them, and the thin structures (aorta,
esophagus, spinal cord, femurs) come last so they stay whole. Then the style's variation
applies: organs it draws as missing become fat, and a smooth random displacement field moves
and reshapes everything. Slivers that a later structure cuts off an organ become fat, so every
single-piece organ is one connected piece.
"""

from __future__ import annotations

import numpy as np

from sammoe_core.phantoms import abdomen, body, skeleton, thorax, vessels
from sammoe_core.phantoms.canvas import Canvas
from sammoe_core.phantoms.deformation import deform, displacement_field
from sammoe_core.phantoms.labels import LABEL_NAMES, LABELS, MULTI_PIECE
from sammoe_core.phantoms.styles import STYLES, PhantomStyle
from sammoe_core.phantoms.tissues import Tissue


def paint_anatomy(
    canvas: Canvas,
    torso: body.Torso,
    rng: np.random.Generator,
    style: PhantomStyle = STYLES["train"],
    variation_rng: np.random.Generator | None = None,
) -> None:
    """Paint one case's anatomy onto ``canvas``: the anatomy's random choices come from ``rng``,
    the style's variation (missing organs, deformation) from ``variation_rng``."""
    diaphragm = body.draw_diaphragm(rng)
    spine = skeleton.draw_spine(rng)
    heads = skeleton.draw_femoral_heads(rng)

    body.paint_body(canvas, torso)
    body.paint_diaphragm(canvas, torso, diaphragm)
    skeleton.paint_back_muscles(canvas, torso, spine, rng)
    abdomen.paint_bowel(canvas, torso, rng)
    abdomen.paint_stomach_and_pancreas(canvas, torso, diaphragm, rng)
    thorax.paint_lungs(canvas, torso, diaphragm, rng)
    thorax.paint_heart(canvas, torso, diaphragm, rng)
    abdomen.paint_liver(canvas, torso, diaphragm, rng)
    abdomen.paint_spleen(canvas, torso, diaphragm, rng)
    abdomen.paint_kidneys(canvas, torso, rng)
    abdomen.paint_bladder(canvas, torso, rng)
    vessels.paint_veins(canvas, torso, spine, rng)
    skeleton.paint_spine(canvas, torso, spine)
    skeleton.paint_chest_wall(canvas, torso, rng)
    skeleton.paint_pelvis(canvas, torso, heads, rng)
    vessels.paint_aorta(canvas, torso, spine, rng)
    thorax.paint_airways(canvas, torso, spine, rng)
    thorax.paint_esophagus(canvas, torso, spine, rng)
    skeleton.paint_cord(canvas, torso, spine, rng)
    skeleton.paint_femurs(canvas, torso, heads, rng)
    if variation_rng is not None:
        _vary(canvas, style, variation_rng)
    organs = [value for value, name in LABEL_NAMES.items() if value != body.BODY and name not in MULTI_PIECE]
    canvas.keep_largest_pieces(organs, Tissue.FAT, body.BODY)
    body.paint_table(canvas, rng)


def _vary(canvas: Canvas, style: PhantomStyle, rng: np.random.Generator) -> None:
    """Remove the organs the style draws as missing, then deform the whole canvas smoothly."""
    for organ, probability in sorted(style.missing.items()):
        if rng.random() < probability:
            gone = canvas.labels == LABELS[organ]
            canvas.tissue[gone] = Tissue.FAT
            canvas.labels[gone] = body.BODY
    amplitude = float(rng.uniform(*style.deform_mm))
    if amplitude > 0:
        field = displacement_field(canvas.grid.shape, canvas.grid.spacing, amplitude, style.deform_spacing_mm, rng)
        canvas.tissue, canvas.labels = deform([canvas.tissue, canvas.labels], field)
        _fill_enclosed_air(canvas)
        _cover_organs_with_body(canvas)


def _cover_organs_with_body(canvas: Canvas) -> None:
    """Organs the deformation pushed to the skin get a layer of body (fat) between them and the air."""
    from scipy import ndimage

    exposed = ndimage.binary_dilation(canvas.labels == 0, np.ones((3, 3, 3), bool)) & (canvas.labels > body.BODY)
    canvas.labels[exposed] = body.BODY
    canvas.tissue[exposed] = Tissue.FAT


def _fill_enclosed_air(canvas: Canvas) -> None:
    """Give voxels of air the deformation folded inside the body the label and tissue of a neighbour."""
    from scipy import ndimage

    holes = np.argwhere(ndimage.binary_fill_holes(canvas.labels > 0) & (canvas.labels == 0))
    offsets = [np.array(o) - 1 for o in np.ndindex(3, 3, 3) if o != (1, 1, 1)]
    upper = np.array(canvas.labels.shape) - 1
    while len(holes):
        h = tuple(holes.T)
        for offset in offsets:
            i, j, k = np.clip(holes + offset, 0, upper).T
            take = (canvas.labels[h] == 0) & (canvas.labels[i, j, k] > 0)
            canvas.labels[h] = np.where(take, canvas.labels[i, j, k], canvas.labels[h])
            canvas.tissue[h] = np.where(take, canvas.tissue[i, j, k], canvas.tissue[h])
        holes = holes[canvas.labels[tuple(holes.T)] == 0]
