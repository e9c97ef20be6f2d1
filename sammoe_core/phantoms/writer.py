"""Write a dataset of phantoms in the labelled-dataset layout (see :mod:`sammoe_core.io.datasets`)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

import numpy as np

from sammoe_core.errors import SammoeError
from sammoe_core.files.atomic import atomic_output, write_text_atomic
from sammoe_core.phantoms.generator import DEFAULT_MAX_VOXELS, generate_phantom
from sammoe_core.phantoms.labels import dataset_label_classes
from sammoe_core.phantoms.styles import get_style

CASE_NAME = "phantom_{index:04d}"
_CASE_FILE = re.compile(r"phantom_\d{4,}\.nii\.gz")


def phantom_case_seed(dataset_seed: int, index: int) -> int:
    """The seed of case ``index`` of the dataset drawn with ``dataset_seed`` (well mixed: nearby
    dataset seeds share no case seeds)."""
    state = np.random.SeedSequence([int(dataset_seed), int(index)]).generate_state(2, np.uint32)
    return int(state[0]) << 32 | int(state[1])


def write_phantom_dataset(
    out_dir: str | Path,
    n: int,
    seed: int,
    contrast: Literal["ct", "mr"] = "ct",
    overwrite: bool = False,
    progress: bool = True,
    *,
    max_voxels: int = DEFAULT_MAX_VOXELS,
    style: str = "train",
) -> list[Path]:
    """Generate ``n`` phantoms into ``out_dir`` (dataset.json, images/, labels/, tissues/); returns
    the image paths. ``tissues/`` holds each case's tissue-class map, from which training
    synthesises images of any contrast (:mod:`sammoe_core.training.synthesis`).

    Every file is written atomically, dataset.json last. An existing non-empty ``out_dir`` is
    refused unless ``overwrite``; then case files of an earlier phantom dataset that the new
    one does not rewrite are removed, so the folder holds exactly the new dataset's cases.
    The progress bar (``progress=True``) shows only when stderr is a terminal.
    """
    from tqdm import tqdm

    if n < 1:
        raise SammoeError(f"{out_dir}: the number of cases must be at least 1 (got {n})")
    if seed < 0:
        raise SammoeError(f"{out_dir}: the seed must be a non-negative integer (got {seed})")
    if contrast not in ("ct", "mr"):
        raise SammoeError(f"{out_dir}: contrast {contrast!r}: expected 'ct' or 'mr'")
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise SammoeError(f"{root}: exists and is not a folder")
    if root.is_dir() and any(root.iterdir()) and not overwrite:
        raise SammoeError(f"{root}: folder is not empty (pass --overwrite to replace the dataset in it)")
    get_style(style)
    image_dir, label_dir, tissue_dir = root / "images", root / "labels", root / "tissues"
    for folder in (image_dir, label_dir, tissue_dir):
        folder.mkdir(parents=True, exist_ok=True)

    names = [CASE_NAME.format(index=i) for i in range(n)]
    _remove_stale_cases([image_dir, label_dir, tissue_dir], keep={f"{name}.nii.gz" for name in names})
    case_seeds = {name: phantom_case_seed(seed, i) for i, name in enumerate(names)}
    written = []
    for name in tqdm(names, desc="phantoms", unit="case", disable=None if progress else True):
        phantom = generate_phantom(case_seeds[name], contrast, max_voxels=max_voxels, style=style)
        image, labels = phantom.to_nifti()
        for nifti, folder in ((image, image_dir), (labels, label_dir), (phantom.tissue_nifti(), tissue_dir)):
            with atomic_output(folder / f"{name}.nii.gz", overwrite=overwrite) as tmp:
                nifti.to_filename(tmp)
        written.append(image_dir / f"{name}.nii.gz")

    spec = {
        "name": f"sammoe-phantoms-{contrast}-{style}-seed{seed}",
        "modality": contrast,
        "labels": dataset_label_classes(),
        "description": "Synthetic torso phantoms from sammoe_core.phantoms; 'body' is the whole "
        "envelope (all labels), every other class its own label.",
        "generator": {
            "name": "sammoe_core.phantoms",
            "style": style,
            "dataset_seed": seed,
            "n": n,
            "max_voxels": max_voxels,
            "case_seeds": case_seeds,
        },
    }
    write_text_atomic(root / "dataset.json", json.dumps(spec, indent=2) + "\n", overwrite=overwrite)
    return written


def _remove_stale_cases(folders: list[Path], keep: set[str]) -> None:
    for folder in folders:
        for path in folder.iterdir():
            if _CASE_FILE.fullmatch(path.name) and path.name not in keep:
                path.unlink()
