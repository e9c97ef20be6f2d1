"""The embedded default on CUDA against CPU on the same machine: README's segmentation and a
small held-out evaluation, each run on both devices; prints agreement, Dice and times.

    python bench/cuda_default.py OUT_DIR [GPU_DEVICE]   (default cuda; "cpu" gives a dry run)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "data"


def sammoe(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sammoe_core", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    out = Path(sys.argv[1])
    gpu = sys.argv[2] if len(sys.argv) > 2 else "cuda"
    n = "4" if gpu != "cpu" else "1"
    out.mkdir(parents=True, exist_ok=True)
    import torch

    from sammoe_core.evaluation.metrics import dice
    from sammoe_core.phantoms import LABEL_NAMES

    value = {name: v for v, name in LABEL_NAMES.items()}
    truth = np.asanyarray(nib.load(EXAMPLE / "phantom_ct_labels.nii.gz").dataobj)
    targets = json.loads((EXAMPLE / "phantom_ct.prompts.json").read_text())["targets"]
    segs, times = {}, {}
    for key, device in (("gpu", gpu), ("cpu", "cpu"), ("gpu", gpu)):  # the second GPU run is the warm one
        seg = out / f"seg_{key}.nii.gz"
        times[key] = sammoe(
            "segment",
            str(EXAMPLE / "phantom_ct.nii.gz"),
            "--prompts",
            str(EXAMPLE / "phantom_ct.prompts.json"),
            "-o",
            str(seg),
            "--device",
            device,
            "-q",
            "--overwrite",
            *(["--preview", str(out / "seg_gpu.png")] if key == "gpu" else []),
        )
        segs[key] = np.asanyarray(nib.load(seg).dataobj)
    print(f"segment (CLI, whole process, warm): {gpu} {times['gpu']:.1f} s, cpu {times['cpu']:.1f} s")
    print(f"target          dice_cpu  dice_{gpu}  voxels_differing")
    for t in targets:
        a, b, g = segs["cpu"] == t["label"], segs["gpu"] == t["label"], truth == value[t["name"]]
        d = [dice(torch.from_numpy(m), torch.from_numpy(g)) for m in (a, b)]
        print(f"{t['name']:15s} {d[0]:8.3f} {d[1]:10.3f} {int((a != b).sum()):10d}")

    held = out / "held"
    sammoe("phantoms", str(held), "--n", n, "--seed", "9000", "-q", "--overwrite")
    means = {}
    for key, device in (("gpu", gpu), ("cpu", "cpu")):
        took = sammoe(
            "evaluate",
            "--data",
            str(held),
            "--clicks",
            "1,3",
            "--device",
            device,
            "-q",
            "-o",
            str(out / f"eval_{key}"),
            "--overwrite",
        )
        means[key] = json.loads((out / f"eval_{key}" / "evaluation.json").read_text())["dice"]
        print(f"evaluate {n} held-out phantom(s) ({device}): {took:.1f} s")
    worst = max(
        abs(means["cpu"][c][m][k] - means["gpu"][c][m][k])
        for c in means["cpu"]
        for m in means["cpu"][c]
        for k in means["cpu"][c][m]
    )
    print(f"evaluate: largest |Dice cpu - Dice {gpu}| over structures, methods, clicks: {worst:.4f}")
    print(
        f"moe Dice at 1 click (cpu / {gpu}):",
        {c: (means["cpu"][c]["moe"]["1"], means["gpu"][c]["moe"]["1"]) for c in sorted(means["cpu"])},
    )


if __name__ == "__main__":
    main()
