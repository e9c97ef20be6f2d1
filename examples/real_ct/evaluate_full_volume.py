"""Full-volume Dice on a labelled dataset, prompted as a user would: `sammoe segment` per structure.

For every structure of every case: the first click at the voxel deepest inside it (farthest from
its border, in millimetres), each next click deep inside the larger error region of the current
result (false negatives: positive, false positives: negative), each structure segmented alone
(edge extension included), Dice on the whole input grid. ``--box`` starts from the structure's
bounding box instead (box-capable networks). Compare with ``sammoe evaluate``, which scores the
128³ crop around the click.

    python examples/real_ct/evaluate_full_volume.py work/data/real-ct --clicks 1,3,5 [--weights W]
    python examples/real_ct/evaluate_full_volume.py work/data/real-ct --policy foundation

Without ``--weights`` it runs the mixture of experts the local state describes (``--policy``,
``--expert`` as for ``sammoe segment``).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy import ndimage

from sammoe_core import segment
from sammoe_core.io.datasets import LabelledDataset
from sammoe_core.io.volumes import read_volume
from sammoe_core.segmentation.predictor_spec import PredictorSpec
from sammoe_core.segmentation.prompts import Target


def deepest(mask: np.ndarray, spacing: np.ndarray) -> tuple[int, ...]:
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    depth = ndimage.distance_transform_edt(np.pad(mask[box], 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    local = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return tuple(int(s.start + i) for s, i in zip(box, local))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return float(2 * (a & b).sum() / total) if total else 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--clicks", default="1")
    ap.add_argument("--weights")
    ap.add_argument("--policy", default="threshold")
    ap.add_argument("--expert")
    ap.add_argument("--classes")
    ap.add_argument("--box", action="store_true", help="start from the bounding box instead of a click")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--precision", default="auto", help="auto, fp32 or bf16 (as for `sammoe segment`)")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (as for `sammoe segment`)")
    ap.add_argument("--crop-batch", type=int, help="crops per encoder pass (as for `sammoe segment`)")
    args = ap.parse_args()
    counts = sorted({int(c) for c in args.clicks.split(",")})
    spec = PredictorSpec(
        weights=args.weights,
        policy=args.policy,
        expert=args.expert,
        precision=args.precision,
        device=args.device,
        crop_batch=args.crop_batch,
    )
    predictor = spec.build()
    ds = LabelledDataset(args.data)
    wanted = args.classes.split(",") if args.classes else list(ds.classes)
    rows: dict[str, dict[int, list[float]]] = {}
    t0 = time.perf_counter()
    for case in ds.cases:
        volume = read_volume(ds.image_path(case))
        labels = read_volume(ds.label_path(case)).array
        for name in wanted:
            truth = ds.target_mask(labels, name)
            if truth.sum() < 50:
                continue
            clicks: list[dict] = []
            box = None
            if args.box:
                idx = np.argwhere(truth)
                box = [*map(int, idx.min(0)), *map(int, idx.max(0))]
            else:
                clicks.append({"position": list(deepest(truth, volume.spacing)), "positive": True})
            result = None
            for k in range(1, max(counts) + 1):
                if result is not None:
                    pred = result.label_map > 0
                    fn, fp = truth & ~pred, pred & ~truth
                    positive = bool(fn.sum() >= fp.sum())
                    region = fn if positive else fp
                    if region.any():
                        clicks.append({"position": list(deepest(region, volume.spacing)), "positive": positive})
                target = Target.model_validate({"name": name, "label": 1, "clicks": clicks, "box": box})
                result = segment(volume, target, predictor)
                if k in counts:
                    rows.setdefault(name, {}).setdefault(k, []).append(dice(result.label_map > 0, truth))
    print("| structure | " + " | ".join(f"{k} click{'s' * (k > 1)}" for k in counts) + " |")
    print("|---|" + "---|" * len(counts))
    for name, by_k in rows.items():
        print(f"| {name} | " + " | ".join(f"{np.mean(by_k[k]):.3f}" for k in counts) + " |")
    means = {k: float(np.mean([np.mean(v[k]) for v in rows.values()])) for k in counts}
    print("| **mean** | " + " | ".join(f"**{means[k]:.3f}**" for k in counts) + " |")
    print(
        f"({time.perf_counter() - t0:.0f} s; model: {json.dumps(getattr(predictor, 'describe', lambda: {})())[:200]})"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "dice": {n: {str(k): float(np.mean(v)) for k, v in by.items()} for n, by in rows.items()},
                    "mean": {str(k): v for k, v in means.items()},
                    "box": args.box,
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
