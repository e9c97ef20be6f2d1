"""Test support for batch runs: a folder of small CT-like volumes with prompts files, a corrupt
volume, and label maps compared by content."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np


def ct_like(shape, seed: int) -> np.ndarray:
    """Air around a soft-tissue ellipsoid with a bright core, plus noise (Hounsfield-like)."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"), -1)
    body = (grid**2).sum(-1) < 0.7
    core = ((grid - 0.15) ** 2).sum(-1) < 0.08
    return (np.where(body, 40.0, -1000.0) + np.where(core, 160.0, 0.0) + rng.normal(0, 15, shape)).astype(np.int16)


def write_cases(folder: Path, count: int, seed: int, shape=(24, 22, 18)) -> list[Path]:
    """``count`` volumes ``case0.nii.gz``... each with a ``<case>.prompts.json`` (one click, label 3)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"case{i}.nii.gz"
        nib.Nifti1Image(ct_like(shape, seed + i), np.diag([1.5, 1.5, 2.0, 1.0])).to_filename(str(path))
        click = [shape[0] // 2 + i % 3, shape[1] // 2, shape[2] // 2]
        (folder / f"case{i}.prompts.json").write_text(
            json.dumps({"targets": [{"name": "core", "label": 3, "points": [click]}]})
        )
        paths.append(path)
    return paths


def write_corrupt(path: Path) -> Path:
    """A file named like a volume that is not one."""
    path.write_bytes(b"not a volume\n" * 40)
    return path


def label_bytes(path: Path) -> bytes:
    """The uncompressed bytes of a label map file (header and voxels; gzip's timestamp aside)."""
    return gzip.decompress(path.read_bytes())
