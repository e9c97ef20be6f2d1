"""Shared set-up for the MoE benchmarks: a phantom volume, a random foundation, generated experts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def phantom_volume(folder: Path, seed: int = 7):
    """A CT phantom written to ``folder`` and a click (voxel indices) inside its liver."""
    import nibabel as nib
    import numpy as np

    from sammoe_core.phantoms import generate_phantom

    ph = generate_phantom(seed)
    path = folder / "phantom.nii.gz"
    nib.save(nib.Nifti1Image(ph.image, ph.affine), path)
    liver = [k for k, v in ph.label_names.items() if v == "liver"][0]
    idx = np.argwhere(ph.labels == liver)
    click = idx[len(idx) // 2]
    return path, [int(v) for v in click]


def make_home(home: Path, config: str, n_experts: int, parts: str = "decoder"):
    """A SAMMOE_HOME with a random foundation of ``config`` chosen and ``n_experts`` experts added."""
    os.environ["SAMMOE_HOME"] = str(home)
    os.environ["SAMMOE_LOAD_PLUGINS"] = ""  # only the default plugins: no installed experts
    from sammoe_core.experts.foundations import choose_foundation
    from sammoe_core.experts.manage import add_expert_folder
    from sammoe_core.testing import make_test_expert, make_test_foundation

    home.mkdir(parents=True, exist_ok=True)
    spec = make_test_foundation(home / "foundation.safetensors", config=config, seed=0)
    choose_foundation(str(spec.weights))
    for i in range(n_experts):
        folder = home / "made" / f"expert-{i:02d}"
        make_test_expert(folder, spec, name=f"expert-{i:02d}", parts=parts, seed=100 + i)
        add_expert_folder(folder)
    return spec
