"""How long one phantom takes: generation (CT and MR) and writing a dataset case, on this CPU.

    python bench/phantom_speed.py [--cases 10]

Prints seconds per case (median, mean, max) with the voxel counts, as wall-clock time and as
this process's CPU time (the machine's 2 cores are shared, so wall time varies with the load;
the generator is single-threaded, so its CPU time is what a case costs on an idle core). The
goal is well under a second per generated case.
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
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def summary(label: str, wall: list[float], cpu: list[float], voxels: list[int]) -> None:
    print(
        f"{label:24s} wall median {statistics.median(wall):.3f} s, max {max(wall):.3f} s | "
        f"CPU median {statistics.median(cpu):.3f} s, max {max(cpu):.3f} s | "
        f"{np.mean(voxels) / 1e6:.1f} M voxels on average, {len(wall)} cases"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10)
    args = parser.parse_args()
    generate_phantom(0)  # warm up imports and caches
    for contrast in ("ct", "mr"):
        wall, cpu, voxels = [], [], []
        for seed in range(1, args.cases + 1):
            elapsed, used, phantom = timed(generate_phantom, seed, contrast)
            wall.append(elapsed)
            cpu.append(used)
            voxels.append(phantom.labels.size)
        summary(f"generate_phantom({contrast!r})", wall, cpu, voxels)
    with tempfile.TemporaryDirectory() as folder:
        n = max(2, args.cases // 3)
        elapsed, used, _ = timed(write_phantom_dataset, Path(folder) / "ds", n=n, seed=1, progress=False)
        size_mb = sum(p.stat().st_size for p in Path(folder).rglob("*.nii.gz")) / n / 1e6
        print(
            f"{'write_phantom_dataset':24s} wall {elapsed / n:.3f} s, CPU {used / n:.3f} s per case "
            f"(generate + write .nii.gz), {size_mb:.1f} MB per case"
        )


if __name__ == "__main__":
    main()
