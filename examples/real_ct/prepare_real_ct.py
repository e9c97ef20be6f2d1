"""Turn the shared real CT (a DICOM series + TotalSegmentator labels) into an evaluation dataset.

The series is read with sammoe's own DICOM reader; the labels (a NIfTI on the same anatomy, with
one voxel axis reversed) are resampled onto the series grid through both affines (nearest), never
matched by voxel index. TotalSegmentator v2 ``total`` ids are mapped to sammoe's class names.
The result is a labelled-dataset folder for ``sammoe evaluate``. It is evaluation-only: never
train on it.

    python examples/real_ct/prepare_real_ct.py ../shared/data/real-ct-dicom work/data/real-ct
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from sammoe_core.io.volumes import read_volume, resample
from sammoe_core.io.volumes.nifti import nifti_like

# TotalSegmentator v2 "total" ids -> sammoe class names (structures that occur in abdominal CT).
TOTALSEG_CLASSES: dict[str, list[int]] = {
    "spleen": [1],
    "kidney_right": [2],
    "kidney_left": [3],
    "gallbladder": [4],
    "liver": [5],
    "stomach": [6],
    "pancreas": [7],
    "esophagus": [15],
    "vertebrae": list(range(26, 51)),
    "heart": [51],
    "aorta": [52],
    "ivc": [63],
    "spinal_cord": [79],
    "autochthon": [86, 87],
}


def main(src: str, out: str) -> None:
    src_dir, out_dir = Path(src), Path(out)
    image = read_volume(src_dir / "series")
    labels_img = nib.load(src_dir / "labels_totalsegmentator.nii.gz")
    labels = np.asarray(labels_img.dataobj).astype(np.float32)
    # labels voxel <- image voxel
    to_labels = np.linalg.inv(labels_img.affine) @ image.affine
    on_image = resample(torch.from_numpy(labels), to_labels, image.shape, np.zeros(3, int), "nearest")
    on_image = np.rint(on_image.numpy()).astype(np.uint16)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "labels").mkdir(parents=True, exist_ok=True)
    nib.save(nifti_like(image.array.astype(np.int16), image), out_dir / "images" / "real_ct.nii.gz")
    classes = {name: ids for name, ids in TOTALSEG_CLASSES.items() if np.isin(on_image, ids).sum() > 0}
    mapped = np.zeros(on_image.shape, dtype=np.uint8)
    spec_labels: dict[str, int] = {"background": 0}
    for value, (name, ids) in enumerate(classes.items(), start=1):
        mapped[np.isin(on_image, ids)] = value
        spec_labels[name] = value
    nib.save(nifti_like(mapped, image), out_dir / "labels" / "real_ct.nii.gz")
    spec = {
        "name": "real-ct-totalsegmentator",
        "modality": "ct",
        "labels": spec_labels,
        "source": "TotalSegmentator test files (Apache-2.0); evaluation only",
    }
    (out_dir / "dataset.json").write_text(json.dumps(spec, indent=2) + "\n")
    for name, value in spec_labels.items():
        if value:
            print(f"{name:14s} {int((mapped == value).sum()):8d} voxels")


if __name__ == "__main__":
    main(*sys.argv[1:3])
