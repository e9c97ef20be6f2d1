"""Time ``segment`` on a synthetic CT-like volume with random weights; print where the time goes.

``python bench/segment_speed.py [--config sammoe-small] [--device cpu] [--size 200] [--max-crops 27]``

Prints, per run, the crops used and the seconds spent sampling crops, encoding, decoding and
pasting back. Random weights predict large masks, so edge extension runs to the crop bound: the
figures are an upper bound on the per-target cost. ``--compare-cpu`` also runs on the CPU and
prints the Dice between the two label maps (device numerics check).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from sammoe_core.devices import resolve_device
from sammoe_core.model import Sam3D, config_names
from sammoe_core.segmentation.pipeline import segment
from sammoe_core.segmentation.predictor import FoundationPredictor
from sammoe_core.segmentation.prompts import Target


def synthetic_ct(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Air around a soft-tissue ellipsoid with a denser core; 1 x 1 x 2 mm voxels, LPS axes."""
    rng = np.random.default_rng(seed)
    shape = (size, size, size // 2)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"), -1)
    body = (grid**2).sum(-1) < 0.8
    core = ((grid - 0.1) ** 2).sum(-1) < 0.1
    data = np.where(body, 40.0, -1000.0) + np.where(core, 150.0, 0.0) + rng.normal(0, 20, shape)
    affine = np.diag([-1.0, -1.0, 2.0, 1.0])
    return data.astype(np.float32), affine


def run(predictor: FoundationPredictor, image: np.ndarray, affine: np.ndarray, max_crops: int):
    centre = [n // 2 for n in image.shape]
    start = time.perf_counter()
    result = segment(image, Target(points=[centre]), predictor, affine=affine, max_crops=max_crops)
    wall = time.perf_counter() - start
    target = result.targets[0]
    stages = ", ".join(f"{k} {v:.2f}" for k, v in target.timings.items())
    print(f"  {len(target.crops)} crops, wall {wall:.2f} s ({stages})")
    return result.label_map


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="sammoe-small", choices=config_names())
    ap.add_argument("--device", default="auto")
    ap.add_argument("--size", type=int, default=200, help="volume edge in voxels (x and y; z is half)")
    ap.add_argument("--max-crops", type=int, default=27)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--compare-cpu", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    model = Sam3D(args.config).eval()
    image, affine = synthetic_ct(args.size)
    device = resolve_device(args.device)
    print(f"config {args.config}, device {device}, volume {image.shape}, max crops {args.max_crops}")
    predictor = FoundationPredictor(model.to(device))
    for _ in range(args.repeats):
        labels = run(predictor, image, affine, args.max_crops)
    if args.compare_cpu and device.type != "cpu":
        print("cpu:")
        reference = run(FoundationPredictor(model.to("cpu")), image, affine, args.max_crops)
        both = np.count_nonzero((labels > 0) & (reference > 0))
        total = np.count_nonzero(labels) + np.count_nonzero(reference)
        print(f"  Dice device vs cpu: {2 * both / max(total, 1):.5f}")


if __name__ == "__main__":
    main()
