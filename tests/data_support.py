"""A tiny labelled dataset for training tests: bright spheres (label 1) and boxes (label 2)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np


def write_sphere_dataset(root: Path, n: int = 3, seed: int = 0, modality: str = "mr") -> Path:
    """``n`` cases of ~90 mm with a sphere and a box, anisotropic spacing, sammoe dataset layout."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(n):
        shape = (40, 44, 36)
        grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1)
        centre = np.array(shape) / 2 + rng.uniform(-3, 3, 3)
        sphere = ((grid - centre) ** 2).sum(-1) < rng.uniform(6, 9) ** 2
        box = np.zeros(shape, bool)
        box[3:12, 4:14, 5:15] = True
        labels = np.where(sphere, 1, np.where(box, 2, 0)).astype(np.uint8)
        image = (100 + 300 * sphere + 150 * box + rng.normal(0, 20, shape)).astype(np.float32)
        affine = np.diag([2.2, 2.0, 2.4, 1.0])
        nib.save(nib.Nifti1Image(image, affine), root / "images" / f"case{i}.nii.gz")
        nib.save(nib.Nifti1Image(labels, affine), root / "labels" / f"case{i}.nii.gz")
    meta = {"name": root.name, "modality": modality, "labels": {"background": 0, "sphere": 1, "box": 2}}
    (root / "dataset.json").write_text(json.dumps(meta))
    return root
