"""MoE overhead: foundation-only segmentation vs the MoE with three decoder-only experts.

    python bench/moe_overhead.py [--config sammoe-small] [--repeats 7] [--device cpu]

Same phantom volume and click for both, one crop each (``max_crops=1``: edge extension would
otherwise let a different mask shape change the amount of work); the MoE runs the gate on the
click and decodes with the chosen expert (the gate is set to route to an expert, the worst case).
The two runs alternate, so machine noise hits both. Prints the median seconds of each and their
ratio (goal <= 1.05).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _bench_support import make_home, phantom_volume


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="sammoe-small")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    import torch

    import sammoe_core
    from sammoe_core.experts import enabled_experts
    from sammoe_core.moe.gate import MlpGate
    from sammoe_core.moe.policies import Top1Policy
    from sammoe_core.moe.segmenter import MoESegmenter
    from sammoe_core.segmentation.predictor import FoundationPredictor

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = make_home(tmp / "home", args.config, 3)
        volume, click = phantom_volume(tmp)
        foundation = spec.load(args.device)
        experts = enabled_experts()
        gate = MlpGate(foundation.config, 4).eval()
        with torch.no_grad():
            gate.net[-1].bias.copy_(torch.tensor([0.0, 5.0, 0.0, 0.0]))  # route to expert-00
        moe = MoESegmenter(foundation, experts, gate.to(foundation.device), Top1Policy(), foundation_sha256=spec.sha256)
        plain = FoundationPredictor(foundation)
        target = sammoe_core.Target(name="liver", points=[click])
        runs = {"foundation": plain, "moe (3 experts)": moe}
        times: dict[str, list[float]] = {name: [] for name in runs}
        last = {}
        for predictor in runs.values():  # warm-up (the MoE composes the chosen expert once)
            sammoe_core.segment(volume, target, predictor, max_crops=1)
        for _ in range(args.repeats):
            for name, predictor in runs.items():
                t0 = time.perf_counter()
                last[name] = sammoe_core.segment(volume, target, predictor, max_crops=1)
                times[name].append(time.perf_counter() - t0)
        for name, ts in times.items():
            chosen = last[name].targets[0].crops[0].get("predictor_info", [{}])[0].get("chosen")
            print(
                f"{name:<18} median {statistics.median(ts):.3f} s over {args.repeats} (min {min(ts):.3f})"
                + (f", routed to {chosen}" if chosen else "")
            )
    ratio = statistics.median(times["moe (3 experts)"]) / statistics.median(times["foundation"])
    print(f"ratio moe / foundation: {ratio:.3f} (goal <= 1.05)")


if __name__ == "__main__":
    main()
