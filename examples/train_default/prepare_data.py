"""Build the training and evaluation data for the embedded default, in sammoe's dataset layout.

    python examples/train_default/prepare_data.py WORK_DIR

Writes (nothing here is committed or packaged):
- WORK_DIR/phantoms-train-ct, -train-mr: phantom torsos (seeds 1000+, 2000+), with tissue maps,
- WORK_DIR/phantoms-calib: spare CT phantoms for gate training (seeds 3000+),
- WORK_DIR/phantoms-heldout: held-out evaluation phantoms (seeds 9000+, never used in training),
- WORK_DIR/phantoms-heldout-style-ct, -mr: phantoms of the held-out generator configuration
  (``style="heldout"``: other deformations, organ absences, body habitus and imaging protocol;
  seeds 9500+, 9700+), for evaluation only,
- WORK_DIR/mni152: nilearn's MNI152 2009 T1 with brain / grey / white matter classes and a
  tissue map (CSF, grey, white matter),
- WORK_DIR/colin27: Debian mricron-data's Colin27 T1 (with skull) with head, skull, brain,
  cerebellum and deep grey nuclei (AAL atlas) and a tissue map from the T1 intensities
  (`apt-get install mricron-data`; skipped with a note if absent).
Idempotent: an existing dataset folder is kept.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from sammoe_core.phantoms import write_phantom_dataset
from sammoe_core.phantoms.tissues import Tissue

MRICRON = Path("/usr/share/mricron/templates")

PHANTOM_SETS = {
    # name: (n, seed, contrast, style)
    "phantoms-train-ct": (100, 1000, "ct", "train"),
    "phantoms-train-mr": (30, 2000, "mr", "train"),
    "phantoms-calib": (24, 3000, "ct", "train"),
    "phantoms-heldout": (20, 9000, "ct", "train"),
    "phantoms-heldout-style-ct": (20, 9500, "ct", "heldout"),
    "phantoms-heldout-style-mr": (10, 9700, "mr", "heldout"),
}


def _write_dataset(root: Path, name: str, modality: str, cases: dict, classes: dict) -> None:
    """cases: name -> (image, labels, tissues or None) nibabel images."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for case, (image, labels, tissues) in cases.items():
        nib.save(image, root / "images" / f"{case}.nii.gz")
        nib.save(labels, root / "labels" / f"{case}.nii.gz")
        if tissues is not None:
            (root / "tissues").mkdir(exist_ok=True)
            nib.save(tissues, root / "tissues" / f"{case}.nii.gz")
    meta = {"name": name, "modality": modality, "labels": {"background": 0, **classes}}
    (root / "dataset.json").write_text(json.dumps(meta, indent=2))


def prepare_mni152(root: Path) -> None:
    from nilearn import datasets

    t1 = datasets.load_mni152_template(resolution=None)
    gm = np.asanyarray(datasets.load_mni152_gm_template(resolution=None).dataobj, dtype=np.float32)
    wm = np.asanyarray(datasets.load_mni152_wm_template(resolution=None).dataobj, dtype=np.float32)
    mask = np.asanyarray(datasets.load_mni152_brain_mask(resolution=None).dataobj) > 0
    csf = np.clip(1 - gm - wm, 0, 1)
    tissue = np.argmax(np.stack([csf, gm, wm]), axis=0) + 1  # 1 csf/other, 2 grey, 3 white
    labels = np.where(mask, tissue, 0).astype(np.uint8)
    image = np.asanyarray(t1.dataobj, dtype=np.float32) * 1000.0
    affine = t1.affine
    tissue_of = np.array([Tissue.AIR, Tissue.CSF, Tissue.GREY_MATTER, Tissue.WHITE_MATTER], dtype=np.uint8)
    tissues = nib.Nifti1Image(tissue_of[labels], affine)
    cases = {"mni152_2009": (nib.Nifti1Image(image, affine), nib.Nifti1Image(labels, affine), tissues)}
    classes = {"brain": [1, 2, 3], "grey_matter": 2, "white_matter": 3}
    _write_dataset(root, "mni152", "mr", cases, classes)


def prepare_colin27(root: Path) -> bool:
    if not (MRICRON / "ch2.nii.gz").exists():
        print(f"note: {MRICRON}/ch2.nii.gz absent (apt-get install mricron-data); colin27 skipped")
        return False
    t1 = nib.load(MRICRON / "ch2.nii.gz")
    bet = np.asanyarray(nib.load(MRICRON / "ch2bet.nii.gz").dataobj) > 0
    aal = np.asanyarray(nib.load(MRICRON / "aal.nii.gz").dataobj).astype(np.int32)
    names = {}
    for line in (MRICRON / "aal.nii.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            names[int(parts[0])] = parts[1]
    groups = {
        "cerebellum": lambda n: n.startswith(("Cerebelum", "Vermis")),
        "caudate": lambda n: n.startswith("Caudate"),
        "putamen": lambda n: n.startswith("Putamen"),
        "thalamus": lambda n: n.startswith("Thalamus"),
    }
    image = np.asanyarray(t1.dataobj, dtype=np.float32)
    head, skull, tissues = _colin_head(image, bet)
    labels = np.where(head, HEAD_OTHER, 0).astype(np.uint8)
    labels[skull] = SKULL
    labels[bet] = 1  # 1: brain not in a group below
    classes: dict[str, object] = {}
    for value, (group, test) in enumerate(groups.items(), start=2):
        ids = [i for i, n in names.items() if test(n)]
        labels[np.isin(aal, ids) & bet] = value
        classes[group] = value
    classes["brain"] = list(range(1, 2 + len(groups)))
    classes["skull"] = SKULL
    classes["head"] = [*classes["brain"], HEAD_OTHER, SKULL]
    cases = {
        "colin27": (
            nib.Nifti1Image(image, t1.affine),
            nib.Nifti1Image(labels, t1.affine),
            nib.Nifti1Image(tissues, t1.affine),
        )
    }
    _write_dataset(root, "colin27", "mr", cases, classes)
    return True


HEAD_OTHER, SKULL = 6, 7


def _colin_head(t1: np.ndarray, brain: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Head mask, skull and a tissue map of a T1 with skull, from intensities and the brain mask.

    Head: the largest component above a low threshold of the smoothed image, holes filled (in 3D
    and per axial slice). Inside the brain mask: CSF / grey / white matter by T1 intensity.
    Outside it: dark voxels within 4 mm of the brain are CSF, further out they are bone (the
    skull, in T1 dark); medium is muscle and skin, bright is fat and marrow.
    """
    smooth = ndimage.gaussian_filter(t1, 1.5)
    pieces, _ = ndimage.label(smooth > 10)
    sizes = np.bincount(pieces.ravel())
    sizes[0] = 0
    head = ndimage.binary_fill_holes(pieces == sizes.argmax())
    for z in range(head.shape[2]):
        head[:, :, z] = ndimage.binary_fill_holes(head[:, :, z])
    near_brain = ndimage.binary_dilation(brain, iterations=4)
    outside = head & ~brain
    dark, bright = t1 < 35, t1 > 75
    skull = outside & dark & ~near_brain
    skull = ndimage.binary_opening(skull, iterations=1)
    tissues = np.full(t1.shape, Tissue.AIR, dtype=np.uint8)
    tissues[outside] = Tissue.MUSCLE
    tissues[outside & bright] = Tissue.FAT
    tissues[outside & dark & near_brain] = Tissue.CSF
    tissues[skull] = Tissue.CORTICAL_BONE
    tissues[brain] = Tissue.GREY_MATTER
    tissues[brain & (t1 < 65)] = Tissue.CSF
    tissues[brain & (t1 > 98)] = Tissue.WHITE_MATTER
    return head, skull, tissues


def main(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    for name, (n, seed, contrast, style) in PHANTOM_SETS.items():
        if not (work / name / "dataset.json").exists():
            write_phantom_dataset(work / name, n=n, seed=seed, contrast=contrast, overwrite=True, style=style)
    if not (work / "mni152" / "dataset.json").exists():
        prepare_mni152(work / "mni152")
    if not (work / "colin27" / "dataset.json").exists():
        prepare_colin27(work / "colin27")
    print(f"datasets ready in {work}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "work"))
