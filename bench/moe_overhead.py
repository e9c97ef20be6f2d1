"""MoE overhead: foundation-only segmentation vs the MoE with three decoder-only experts.

    python bench/moe_overhead.py [--config sammoe-small] [--repeats 7] [--device cpu]

Same phantom volume and click for both; the MoE runs the gate on every click and decodes with
the chosen expert (a random gate is set to route to an expert, the worst case: one expert decode
instead of the foundation's). Prints the median seconds of each and their ratio (goal <= 1.05).
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
    from sammoe_core.moe.gate import MlpGate
    from sammoe_core.moe.policies import Top1Policy
    from sammoe_core.moe.segmenter import MoESegmenter
    from sammoe_core.experts import enabled_experts
    from sammoe_core.predictor import FoundationPredictor

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
        results = {}
        for name, predictor in (("foundation", plain), ("moe (3 experts)", moe)):
            sammoe_core.segment(volume, target, predictor)  # warm-up (composes the chosen expert once)
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                res = sammoe_core.segment(volume, target, predictor)
                times.append(time.perf_counter() - t0)
            results[name] = statistics.median(times)
            chosen = res.targets[0].crops[0].get("predictor_info", [{}])[0].get("chosen")
            print(f"{name:<18} median {results[name]:.3f} s over {args.repeats} (min {min(times):.3f})"
                  + (f", routed to {chosen}" if chosen else ""))
    print(f"ratio moe / foundation: {results['moe (3 experts)'] / results['foundation']:.3f} (goal <= 1.05)")


if __name__ == "__main__":
    main()
