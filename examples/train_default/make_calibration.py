"""Build the small calibration sets the expert plugins ship (for gate training) and the example
volume README's first command segments.

    python examples/train_default/make_calibration.py WORK_DIR

- WORK_DIR/calib-<expert>/: 3 CT phantoms each (seeds 3000+, never used for training), cropped
  to the box around the expert's structures plus 60 mm, so they stay about a megabyte each and
  still hold the general organs next to them (the gate learns where the foundation is better).
- examples/data/phantom_ct.nii.gz + .prompts.json: a held-out CT phantom (seed 9999) and one
  click deep inside each of eight structures.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from sammoe_core.phantoms import GENERAL_STRUCTURES, LABEL_NAMES, SPECIFIC_STRUCTURES, generate_phantom

EXPERTS = {"spinal-cord": ["spinal_cord"], "esophagus": ["esophagus"], "hip": ["hip_left", "hip_right"]}
MARGIN_MM = 60.0
EXAMPLE_TARGETS = ["liver", "spleen", "kidney_left", "kidney_right", "aorta", "spinal_cord", "esophagus", "hip_left"]
REPO = Path(__file__).resolve().parents[2]


# The classes a calibration set offers the gate: the experts' structures and the organs around
# them (a few classes keep the first `sammoe retrain-gate` short; every label stays in "body").
CALIBRATION_CLASSES = (*GENERAL_STRUCTURES[:9], *SPECIFIC_STRUCTURES, "stomach", "vertebrae")


def _dataset_json(name: str) -> dict:
    labels: dict[str, object] = {"background": 0, "body": sorted(LABEL_NAMES)}
    labels.update({n: v for v, n in sorted(LABEL_NAMES.items()) if n != "body" and n in CALIBRATION_CLASSES})
    return {
        "name": name,
        "modality": "ct",
        "labels": labels,
        "description": "Cropped synthetic CT phantoms (sammoe_core.phantoms) for gate training.",
    }


def _crop(ph, structures: list[str]):
    values = [v for v, n in LABEL_NAMES.items() if n in structures]
    idx = np.argwhere(np.isin(ph.labels, values))
    spacing = np.linalg.norm(ph.affine[:3, :3], axis=0)
    pad = np.ceil(MARGIN_MM / spacing).astype(int)
    lo = np.maximum(idx.min(0) - pad, 0)
    hi = np.minimum(idx.max(0) + pad + 1, ph.labels.shape)
    sl = tuple(slice(a, b) for a, b in zip(lo, hi))
    affine = ph.affine.copy()
    affine[:3, 3] = ph.affine[:3, :3] @ lo + ph.affine[:3, 3]
    return ph.image[sl], ph.labels[sl], affine


def make_calibration(work: Path, n: int = 3) -> None:
    for k, (expert, structures) in enumerate(EXPERTS.items()):
        root = work / f"calib-{expert}"
        if (root / "dataset.json").exists():
            continue
        shutil.rmtree(root, ignore_errors=True)
        (root / "images").mkdir(parents=True)
        (root / "labels").mkdir()
        for i in range(n):
            ph = generate_phantom(3000 + 10 * k + i, max_voxels=6_000_000)
            image, labels, affine = _crop(ph, structures)
            nib.save(nib.Nifti1Image(np.rint(image).astype(np.int16), affine), root / "images" / f"calib_{i}.nii.gz")
            nib.save(nib.Nifti1Image(labels.astype(np.uint8), affine), root / "labels" / f"calib_{i}.nii.gz")
        (root / "dataset.json").write_text(json.dumps(_dataset_json(f"calibration-{expert}"), indent=2))


def make_example(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    ph = generate_phantom(9999, max_voxels=6_000_000)
    nib.save(nib.Nifti1Image(np.rint(ph.image).astype(np.int16), ph.affine), out / "phantom_ct.nii.gz")
    nib.save(nib.Nifti1Image(ph.labels.astype(np.uint8), ph.affine), out / "phantom_ct_labels.nii.gz")
    targets = []
    for label, name in enumerate(EXAMPLE_TARGETS, start=1):
        value = [v for v, n in LABEL_NAMES.items() if n == name][0]
        depth = ndimage.distance_transform_edt(ph.labels == value)
        click = np.unravel_index(int(np.argmax(depth)), depth.shape)
        targets.append({"name": name, "label": label, "points": [[int(c) for c in click]]})
    (out / "phantom_ct.prompts.json").write_text(json.dumps({"targets": targets}, indent=2) + "\n")


if __name__ == "__main__":
    make_calibration(Path(sys.argv[1] if len(sys.argv) > 1 else "work/data"))
    make_example(REPO / "examples" / "data")
