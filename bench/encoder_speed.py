"""Image-encoder speed and exactness: official code (medim) vs sammoe, side by side in one run.

    python bench/encoder_speed.py [--device cpu|cuda] [--repeats 5] [--medim-repeats 3]

Every variant runs in its own subprocess (so peak RSS is its own) on the same random weights and
the same 128³ input: medim fp32, sammoe exact fp32, sammoe literal padded window fp32 (optional),
sammoe exact bf16, the bench-only bf16 CUDA graph (CUDA only), and ``runtime``: the encoder as
``sammoe segment`` runs it (``FoundationPredictor.encode`` at the precision ``--precision auto``
picks on the device, replayed as a CUDA graph on CUDA, with its fp32 output), and ``runtime-x8``:
the same with eight crops in one ``encode_batch`` (``--crop-batch 8``, the CUDA default; its times
are per crop). Prints median seconds, the ratio to medim, max abs diff to medim, and peak memory
(RSS on CPU; max allocated on CUDA). Needs the test extra (medim, requests).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

VARIANTS = ("medim", "exact", "padded", "bf16", "bf16-graph", "runtime", "runtime-x8")
BATCH = {"runtime-x8": 8}


def _run_variant(variant: str, device: str, repeats: int, out: str) -> None:
    import torch

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from tests.conftest import randomize_weights

    torch.manual_seed(0)
    if variant == "medim":
        from medim.models.sam_med3d import build_sam3D_vit_b_ori

        model = build_sam3D_vit_b_ori()
        randomize_weights(model, 1234)
        encoder = model.image_encoder
    else:
        from sammoe_core.model import Sam3D

        model = Sam3D("sam-med3d-vit-b")
        randomize_weights(model, 1234)
        if variant == "padded":
            model.set_attention_mode("padded")
        encoder = model.image_encoder
    dev = torch.device(device)
    encoder = encoder.to(dev).eval()
    image = torch.randn(1, 1, 128, 128, 128, generator=torch.Generator().manual_seed(99)).to(dev)
    ctx = (
        torch.autocast(dev.type, dtype=torch.bfloat16, cache_enabled=variant != "bf16-graph")
        if variant.startswith("bf16")
        else torch.autocast(dev.type, enabled=False)
    )
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    times = []
    run = encoder
    batch = BATCH.get(variant, 1)
    if variant.startswith("runtime"):
        from sammoe_core.devices import choose_precision
        from sammoe_core.segmentation.predictor import FoundationPredictor

        predictor = FoundationPredictor(model.to(dev).eval())
        predictor.precision, predictor.precision_reason = choose_precision(dev, "auto")
        print(f"runtime precision: {predictor.precision} ({predictor.precision_reason})", file=sys.stderr)
        run = predictor.encode
        if batch > 1:  # the same first crop, then others: the output compared is the first crop's
            others = torch.randn(batch - 1, 1, 128, 128, 128, generator=torch.Generator().manual_seed(7))
            image = torch.cat([image, others.to(dev)])
    with torch.no_grad(), ctx:
        out_t = run(image)  # warm-up
        sync()
        if variant == "bf16-graph":  # replay one captured CUDA graph: no per-kernel launch cost
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):
                    encoder(image)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = encoder(image)

            def run(_image):
                graph.replay()
                return static_out

        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for _ in range(repeats):
            t0 = time.perf_counter()
            out_t = run(image)
            sync()
            times.append((time.perf_counter() - t0) / batch)
    if variant.startswith("runtime"):
        print(f"runtime encoder: {predictor.describe()['encoder_runtime']}", file=sys.stderr)
    torch.save(out_t[:1].float().cpu(), out + ".pt")
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if dev.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    with open(out + ".json", "w") as f:
        json.dump({"times": times, "peak_mb": peak, "threads": torch.get_num_threads()}, f)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--medim-repeats", type=int, default=3)
    ap.add_argument("--with-padded", action="store_true", help="also time the literal padded mode")
    ap.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.variant:
        _run_variant(args.variant, args.device, args.repeats, args.out)
        return

    import torch

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in VARIANTS:
            if variant == "padded" and not args.with_padded:
                continue
            if variant == "bf16-graph" and not args.device.startswith("cuda"):
                continue
            reps = args.medim_repeats if variant in ("medim", "padded") else args.repeats
            out = os.path.join(tmp, variant)
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--variant",
                    variant,
                    "--device",
                    args.device,
                    "--repeats",
                    str(reps),
                    "--out",
                    out,
                ],
                check=True,
            )
            with open(out + ".json") as f:
                results[variant] = json.load(f)
            results[variant]["output"] = torch.load(out + ".pt", weights_only=True)
    ref = results["medim"]
    ref_t = statistics.median(ref["times"])
    mem = "peak MiB (CUDA alloc)" if args.device.startswith("cuda") else "peak RSS MiB"
    print(f"device {args.device}, torch threads {ref['threads']}, 128³ input, sam-med3d-vit-b, random weights")
    print(f"{'variant':<16}{'median s':>10}{'min s':>9}{'x medim':>9}{'max|diff|':>12}{mem:>24}")
    for name, r in results.items():
        t = statistics.median(r["times"])
        diff = (r["output"] - ref["output"]).abs().max().item()
        print(f"{name:<16}{t:>10.4f}{min(r['times']):>9.4f}{ref_t / t:>9.1f}{diff:>12.2e}{r['peak_mb']:>24.0f}")


if __name__ == "__main__":
    main()
