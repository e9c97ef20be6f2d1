"""Gate training cost: fitting on 1,000 cached samples, and filling the cache, batch 1 vs batch N.

    python bench/gate_training.py [--config sammoe-small] [--samples 1000] [--experts 3] [--device cpu]
                                  [--cache-prompts 12] [--batch 4 8] [--repeats 2] [--cache-device cpu cuda]

Part 1 fits the built-in MLP gate (80 epochs) on synthetic cached records of the config's
embedding size (goal: <= 10 s for 1,000 samples on the 2-core CPU). Part 2 times the cache fill:
one foundation encoder pass plus one decode, upsample and Dice per candidate (foundation +
decoder-only experts) per training prompt, on a random foundation, with batch 1 and with each
``--batch`` size side by side, on the CPU and on CUDA when present.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import _bench_support  # noqa: F401  (puts the repo on sys.path)

if TYPE_CHECKING:
    import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="sammoe-small")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--experts", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cache-prompts", type=int, default=12)
    ap.add_argument("--batch", type=int, nargs="+", default=[4, 8], help="batch sizes timed against batch 1")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument(
        "--cache-device", nargs="+", default=None, help="devices of part 2 (default: cpu, and cuda when present)"
    )
    args = ap.parse_args()
    import torch

    from sammoe_core.model import get_config
    from sammoe_core.moe.gate import MlpGate
    from sammoe_core.moe.gate_training import fit_gate

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

    devices = args.cache_device or ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    for device in devices:
        fill_seconds(args, torch.device(device), gen)


def fill_seconds(args: argparse.Namespace, device: torch.device, gen: torch.Generator) -> None:
    """Part 2 on ``device``: fill a fresh cache with batch 1 and with each ``--batch`` size,
    repeats interleaved (the machine is shared: the ratio is the figure, the seconds are not),
    then read it back once filled."""
    import torch

    from sammoe_core.model import get_config
    from sammoe_core.moe.gate_training import Candidate, GateCache, TrainingPrompt
    from sammoe_core.testing import make_test_expert, make_test_foundation

    s = get_config(args.config).image_size
    sizes = [1, *[b for b in args.batch if b != 1]]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = make_test_foundation(tmp / "f.safetensors", config=args.config)
        foundation_model = spec.load(device)
        foundation = Candidate("foundation", spec.sha256, lambda: foundation_model)
        experts = [make_test_expert(tmp / f"e{i}", spec, name=f"expert-{i}", seed=10 + i) for i in range(args.experts)]
        cands = [
            Candidate(e.name, e.manifest.weights.sha256, (lambda e=e: e.build(foundation_model, spec.sha256)))
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
        GateCache(tmp / "warm-up").build(prompts[:2], foundation, cands, device, batch_size=2)  # models built
        seconds: dict[int, list[float]] = {b: [] for b in sizes}
        for r in range(args.repeats):
            for b in sizes if r % 2 == 0 else reversed(sizes):
                cache = GateCache(tmp / f"cache-{b}-{r}")
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                t0 = time.perf_counter()
                cache.build(prompts, foundation, cands, device, batch_size=b)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                seconds[b].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        cache.build(prompts, foundation, cands, device)
        reread_s = (time.perf_counter() - t0) / len(prompts)
    best = {b: min(v) for b, v in seconds.items()}
    print(
        f"cache fill on {device} ({len(prompts)} prompts, {1 + args.experts} candidates, {args.config}, "
        f"{torch.get_num_threads()} threads; best of {args.repeats}, interleaved):"
    )
    for b in sizes:
        print(
            f"  batch {b:>2}: {best[b]:7.2f} s, {best[b] / len(prompts):.3f} s per prompt, "
            f"{best[1] / best[b]:.2f}x batch 1"
        )
    print(f"  cached: {reread_s:.4f} s per prompt to read back")


if __name__ == "__main__":
    main()
