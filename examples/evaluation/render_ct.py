"""Render a labelled dataset that has a tissue map as a CT (Hounsfield units), for evaluation.

    python examples/evaluation/render_ct.py work/data/colin27 work/data/colin27-ct

Each tissue gets its mean HU from ``sammoe_core.phantoms.tissues.CT_HU`` (non-contrast values for
blood and organs), then a 0.7-voxel blur and 15 HU of noise (seed 0). For Colin27 this gives a
head CT whose anatomy, but not whose image, was seen in training (training synthesised its own
random renditions of the same tissue map): a check that a CT head is segmented, not a
generalisation figure.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from sammoe_core.phantoms.tissues import CT_HU, CT_NON_CONTRAST, Tissue


def main(src: str, dst: str) -> None:
    src_dir, out = Path(src), Path(dst)
    (out / "images").mkdir(parents=True, exist_ok=True)
    shutil.copytree(src_dir / "labels", out / "labels", dirs_exist_ok=True)
    spec = json.loads((src_dir / "dataset.json").read_text())
    spec.update(name=f"{spec['name']}-ct", modality="ct")
    (out / "dataset.json").write_text(json.dumps(spec, indent=2) + "\n")
    table = np.zeros(max(int(t) for t in Tissue) + 1, dtype=np.float32)
    for tissue in Tissue:
        table[int(tissue)] = {**CT_HU, **CT_NON_CONTRAST}[tissue][0]
    rng = np.random.default_rng(0)
    for path in sorted((src_dir / "tissues").glob("*.nii.gz")):
        tissues = nib.load(path)
        hu = table[np.asarray(tissues.dataobj).astype(np.int64)]
        hu = ndimage.gaussian_filter(hu, 0.7) + rng.normal(0.0, 15.0, hu.shape)
        stored = np.clip(np.rint(hu), -1024, 3000).astype(np.int16)
        nib.save(nib.Nifti1Image(stored, tissues.affine), out / "images" / path.name)
    print(f"{out}: {spec['name']}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
