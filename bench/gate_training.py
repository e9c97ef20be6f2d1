"""Gate training cost: fitting on 1,000 cached samples, and building the cache per sample.

    python bench/gate_training.py [--config sammoe-small] [--samples 1000] [--experts 3] [--device cpu]

Part 1 fits the built-in MLP gate (80 epochs) on synthetic cached records of the config's
embedding size (goal: <= 10 s for 1,000 samples on the 2-core CPU). Part 2 times the cache build
per training prompt: one foundation encoder pass plus one decode, upsample and Dice per candidate
(foundation + decoder-only experts), on a random foundation.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _bench_support  # noqa: F401  (puts the repo on sys.path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="sammoe-small")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--experts", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cache-prompts", type=int, default=6)
    args = ap.parse_args()
    import torch

    from sammoe_core.model import get_config
    from sammoe_core.moe.gate import MlpGate
    from sammoe_core.moe.gate_training import Candidate, GateCache, TrainingPrompt, fit_gate
    from sammoe_core.testing import make_test_expert, make_test_foundation

    cfg = get_config(args.config)
    g, s, c = cfg.grid_size, cfg.image_size, cfg.prompt_dim
    order = ["foundation", *[f"expert-{i}" for i in range(args.experts)]]
    gen = torch.Generator().manual_seed(0)
    records = []
    for i in range(args.samples):
        best = i % len(order)
        emb = torch.randn(c, g, g, g, generator=gen)
        emb[best % c] += 2.0  # make the best candidate learnable
        records.append(
            {
                "group": f"case{i // 4}",
                "features": {
                    "embedding": emb,
                    "sparse": torch.randn(2, c, generator=gen),
                    "click": torch.full((3,), s / 2),
                },
                "dice": {name: (0.9 if k == best else 0.5) for k, name in enumerate(order)},
            }
        )
    t0 = time.perf_counter()
    fit = fit_gate(records, order, MlpGate(cfg, len(order)), s, epochs=80, device=args.device)
    fit_s = time.perf_counter() - t0
    print(
        f"fit: {args.samples} cached samples, {len(order)} candidates, 80 epochs: {fit_s:.2f} s "
        f"(goal <= 10 s); held-out accuracy {fit.heldout_accuracy:.1%}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = make_test_foundation(tmp / "f.safetensors", config=args.config)
        foundation = spec.load(args.device)
        experts = [make_test_expert(tmp / f"e{i}", spec, name=f"expert-{i}", seed=10 + i) for i in range(args.experts)]
        cands = [
            Candidate(e.name, e.manifest.weights.sha256, (lambda e=e: e.build(foundation, spec.sha256)))
            for e in experts
        ]
        prompts = [
            TrainingPrompt(
                key=f"p{i}",
                image=torch.randn(1, s, s, s, generator=gen),
                target=torch.rand(s, s, s, generator=gen) > 0.9,
                click=torch.full((3,), s // 2),
                group=f"g{i}",
            )
            for i in range(args.cache_prompts)
        ]
        cache = GateCache(tmp / "cache")
        t0 = time.perf_counter()
        cache.build(prompts, Candidate("foundation", spec.sha256, lambda: foundation), cands, torch.device(args.device))
        build_s = (time.perf_counter() - t0) / len(prompts)
        t0 = time.perf_counter()
        cache.build(prompts, Candidate("foundation", spec.sha256, lambda: foundation), cands, torch.device(args.device))
        reread_s = (time.perf_counter() - t0) / len(prompts)
    print(
        f"cache: {build_s:.3f} s per prompt to build ({1 + args.experts} candidates, {args.config}), "
        f"{reread_s:.4f} s per prompt when cached"
    )


if __name__ == "__main__":
    main()
