"""Segmentation time by crops per encoder pass (``--crop-batch``), side by side in one process.

    python bench/crop_batch.py [VOLUME PROMPTS] [--device cpu] [--batches 1,2,4] [--repeats 3]

Builds the shipped default (the mixture of experts the local state describes) once, segments the
volume once to warm up, then ``--repeats`` rounds, each running every batch size in turn
(interleaved, so a busy spell hits all alike). Prints the median segmentation seconds and encoder
seconds per batch size, and how many label-map voxels differ from one crop per pass (batches round
differently in the last bits). Defaults to the shipped example volume and its 8-target prompts.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

import sammoe_core
from sammoe_core.io.volumes import read_volume
from sammoe_core.segmentation.predictor_spec import PredictorSpec
from sammoe_core.segmentation.prompts import load_prompts

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("volume", nargs="?", type=Path, default=EXAMPLE / "phantom_ct.nii.gz")
    ap.add_argument("prompts", nargs="?", type=Path, default=EXAMPLE / "phantom_ct.prompts.json")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--batches", default="1,2,4", help="comma-separated crop batch sizes; the first is the reference")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    predictor = PredictorSpec(device=args.device, precision=args.precision).build()
    volume, targets = read_volume(args.volume), load_prompts(args.prompts)
    sammoe_core.segment(volume, targets, predictor)  # warm-up: experts composed, first-call costs paid
    wall: dict[int, list[float]] = {b: [] for b in batches}
    encode: dict[int, list[float]] = {b: [] for b in batches}
    maps: dict[int, np.ndarray] = {}
    for _ in range(args.repeats):
        for batch in batches:
            predictor.crop_batch = batch  # type: ignore[attr-defined]
            start = time.perf_counter()
            result = sammoe_core.segment(volume, targets, predictor)
            wall[batch].append(time.perf_counter() - start)
            encode[batch].append(sum(t.timings["encode_s"] for t in result.targets))
            maps[batch] = result.label_map
    described = predictor.describe()
    print(
        f"{args.volume.name}: {len(targets)} targets, {args.device}, {described['precision']}, "
        f"encoder {described['encoder_runtime']}; medians of {args.repeats} interleaved rounds"
    )
    print(f"{'crop batch':>10}{'segment s':>11}{'encode s':>10}{'voxels differing':>18}")
    reference = maps[batches[0]]
    for batch in batches:
        differing = int(np.count_nonzero(maps[batch] != reference))
        print(
            f"{batch:>10}{statistics.median(wall[batch]):>11.3f}{statistics.median(encode[batch]):>10.3f}"
            f"{differing:>18d}"
        )


if __name__ == "__main__":
    main()
