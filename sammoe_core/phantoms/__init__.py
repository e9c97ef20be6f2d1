"""Synthetic CT- and MR-like torso phantoms with label maps, and datasets of them.

Coordinates: world RAS+ millimetres, the NIfTI/nibabel convention: +x towards the patient's
Right, +y Anterior, +z Superior (DICOM's LPS flips x and y). "_left"/"_right" always mean the
patient's side, so the liver (right) lies at larger world x than the spleen (left). Each case
is stored with a random axis order and direction; the affine maps it to the same world mm.

Label values (fixed): 1 body (remaining soft tissue, fat, muscle, bone), 2 lung_left,
3 lung_right, 4 liver, 5 spleen, 6 kidney_left, 7 kidney_right, 8 bladder, 9 aorta,
10 spinal_cord, 11 esophagus, 12 hip_left, 13 hip_right (proximal femurs). See docs/phantoms.md.

    >>> phantom = generate_phantom(seed=0)            # one case, deterministic per seed
    >>> write_phantom_dataset("out", n=10, seed=0)    # a labelled dataset (sammoe_core.io.datasets)
"""

from __future__ import annotations

from sammoe_core.phantoms.generator import DEFAULT_MAX_VOXELS, Phantom, generate_phantom
from sammoe_core.phantoms.labels import GENERAL_STRUCTURES, LABEL_NAMES, LABELS, SPECIFIC_STRUCTURES
from sammoe_core.phantoms.writer import phantom_case_seed, write_phantom_dataset

__all__ = [
    "DEFAULT_MAX_VOXELS",
    "GENERAL_STRUCTURES",
    "LABELS",
    "LABEL_NAMES",
    "Phantom",
    "SPECIFIC_STRUCTURES",
    "generate_phantom",
    "phantom_case_seed",
    "write_phantom_dataset",
]
