"""Write a copy of a labelled phantom dataset whose images are synthesised from its label maps.

    python examples/train_default/synthesize_dataset.py SRC DST --style ct|random [--seed S]

Every case of SRC (images/, labels/, tissues/) gets one whole-volume image in the given style of
:mod:`sammoe_core.training.synthesis` (``ct``: Hounsfield units per tissue with a random contrast
phase; ``random``: random per-label intensities, bias field, gamma, inversion; both with blur,
noise and sometimes thick slices; never a truncated field of view). The labels are copied
unchanged. The default gate trains on such copies besides the phantoms themselves, so that its
routing depends on anatomy, not on the generator's textures (trained on the generator's images
alone, it sent real-CT prompts to the wrong experts).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from sammoe_core.io.datasets import LabelledDataset
from sammoe_core.training.synthesis import synthesize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--style", choices=["ct", "random"], required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = LabelledDataset(args.src)
    for sub in ("images", "labels"):
        (args.dst / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([args.seed, 0 if args.style == "ct" else 1])
    for case in data.cases:
        image, labels = data.load(case)  # the checked reader: CRC, shape, finiteness, same grid
        tissues = data.load_tissues(case).array if args.style == "ct" else None
        result = synthesize(
            torch.from_numpy(labels.array.astype(np.int64)),
            None if tissues is None else torch.from_numpy(tissues.astype(np.int64)),
            torch.from_numpy(image.array.astype(np.float32)),
            "ct",
            np.array(labels.shape) // 2,
            rng,
            style=args.style,
            field_of_view=False,
        )
        nib.save(
            nib.Nifti1Image(result.image.numpy().astype(np.float32), image.affine),
            args.dst / "images" / data.image_path(case).name,
        )
        shutil.copyfile(data.label_path(case), args.dst / "labels" / data.label_path(case).name)
        print(f"{case}: {args.style}", flush=True)
    meta = json.loads((args.src / "dataset.json").read_text())
    meta.update(
        name=f"{meta.get('name', args.src.name)}-synth-{args.style}",
        modality="ct" if args.style == "ct" else "mr",
        description=f"{args.src.name} with images synthesised in the {args.style!r} style "
        f"(examples/train_default/synthesize_dataset.py, seed {args.seed}); labels unchanged.",
    )
    (args.dst / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
