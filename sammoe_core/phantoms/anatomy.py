"""The painting order of a torso: what covers what, from the body wall out to the table.

Later structures win where two overlap, so unlabelled structures that carve organs in real
anatomy (the IVC behind the liver, the spine, the ribs) come after them, and the labelled
thin structures (aorta, esophagus, spinal cord, femurs) come last so they stay whole. Slivers
that a later structure cuts off an organ become fat, so every organ is one connected piece.
"""

from __future__ import annotations

import numpy as np

from . import abdomen, body, skeleton, thorax, vessels
from .canvas import Canvas
from .intensities import Tissue
from .labels import LABEL_NAMES


def paint_anatomy(canvas: Canvas, torso: body.Torso, rng: np.random.Generator) -> None:
    """Paint one case's anatomy (all of its random choices drawn from ``rng``) onto ``canvas``."""
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
    organs = [value for value in LABEL_NAMES if value != body.BODY]
    canvas.keep_largest_pieces(organs, Tissue.FAT, body.BODY)
    body.paint_table(canvas, rng)
