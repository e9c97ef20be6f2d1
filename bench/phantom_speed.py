"""How long one phantom takes: generation (CT and MR) and writing a dataset case, on this CPU.

    python bench/phantom_speed.py [--cases 10]

Prints seconds per case (median, mean, max) with the voxel counts; the goal is well under a
second per generated case on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from sammoe_core.phantoms import generate_phantom, write_phantom_dataset


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def summary(label: str, seconds: list[float], voxels: list[int]) -> None:
    print(f"{label:24s} median {statistics.median(seconds):.3f} s  mean {statistics.mean(seconds):.3f} s  "
          f"max {max(seconds):.3f} s  ({np.mean(voxels) / 1e6:.1f} M voxels on average, {len(seconds)} cases)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10)
    args = parser.parse_args()
    generate_phantom(0)  # warm up imports and caches
    for contrast in ("ct", "mr"):
        seconds, voxels = [], []
        for seed in range(1, args.cases + 1):
            elapsed, phantom = timed(generate_phantom, seed, contrast)
            seconds.append(elapsed)
            voxels.append(phantom.labels.size)
        summary(f"generate_phantom({contrast!r})", seconds, voxels)
    with tempfile.TemporaryDirectory() as folder:
        n = max(2, args.cases // 3)
        elapsed, paths = timed(write_phantom_dataset, Path(folder) / "ds", n=n, seed=1, progress=False)
        size_mb = sum(p.stat().st_size for p in Path(folder).rglob("*.nii.gz")) / n / 1e6
        print(f"{'write_phantom_dataset':24s} {elapsed / n:.3f} s per case (generate + write), {size_mb:.1f} MB per case")


if __name__ == "__main__":
    main()
