"""A labelled dataset seen in training, stored at another orientation and voxel size.

    python examples/evaluation/make_geometry_variants.py work/data/mni152 work/data/mni152-lsa-2x3x2

The image is resampled (linear) and the labels (nearest) to 2 x 3 x 2 mm voxels stored in LSA
axis order, as the T1 of a head the issue reported (brain Dice 0.12 there). The anatomy was seen in
training, so this measures robustness to orientation and resolution, not generalisation.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel import orientations
from nibabel.processing import resample_from_to

SPACING = (2.0, 2.0, 3.0)  # RAS: stored in LSA order that is 2 x 3 x 2 mm
AXCODES = ("L", "S", "A")


def variant(image: nib.Nifti1Image, order: int) -> nib.Nifti1Image:
    canonical = nib.as_closest_canonical(image)
    zooms = np.asarray(canonical.header.get_zooms()[:3])
    shape = np.ceil(np.asarray(canonical.shape[:3]) * zooms / np.asarray(SPACING)).astype(int)
    target = np.diag([*SPACING, 1.0])
    target[:3, 3] = canonical.affine[:3, 3]
    resampled = resample_from_to(canonical, (tuple(int(n) for n in shape), target), order=order)
    ras, stored = orientations.axcodes2ornt(("R", "A", "S")), orientations.axcodes2ornt(AXCODES)
    transform = orientations.ornt_transform(ras, stored)
    data = orientations.apply_orientation(np.asanyarray(resampled.dataobj), transform)
    affine = resampled.affine @ orientations.inv_ornt_aff(transform, resampled.shape)
    return nib.Nifti1Image(data.astype(np.uint8 if order == 0 else np.float32), affine)


def main(src: str, dst: str) -> None:
    src_dir, out = Path(src), Path(dst)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    spec = json.loads((src_dir / "dataset.json").read_text())
    spec["name"] = f"{spec['name']}-{''.join(AXCODES)}-2x3x2mm"
    (out / "dataset.json").write_text(json.dumps(spec, indent=2) + "\n")
    for path in sorted((src_dir / "images").glob("*.nii.gz")):
        nib.save(variant(nib.load(path), 1), out / "images" / path.name)
        nib.save(variant(nib.load(src_dir / "labels" / path.name), 0), out / "labels" / path.name)
    shutil.rmtree(out / "tissues", ignore_errors=True)
    print(f"{out}: {spec['name']}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
