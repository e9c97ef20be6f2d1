"""ONNX Runtime (CPU) against PyTorch for the exported graphs: time per call and max abs difference.

    python bench/onnx_runtime.py [--onnx DIR] [--expert NAME] [--threads 2] [--repeats 5]

Without ``--onnx`` it first exports (``export_onnx``, timed) the foundation in use, or ``--expert``
composed over it, to a temporary folder. Then, on the same random inputs at batch 1 and 2 (two
clicks, a random mask prompt), it prints the median seconds of the encoder and of the decoder in
PyTorch and in ONNX Runtime, and the largest absolute difference between them. Needs the onnx
extra (``pip install 'sammoe[onnx]'``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", type=Path, help="a folder export-onnx wrote (default: export now)")
    parser.add_argument("--expert", default=None, help="with no --onnx: export this expert over the foundation")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import numpy as np
    import onnxruntime as ort
    import torch

    from sammoe_core.deploy.onnx_export import export_onnx, model_to_export
    from sammoe_core.deploy.onnx_graphs import example_inputs

    torch.set_num_threads(args.threads)
    folder = args.onnx
    if folder is None:
        folder = Path(tempfile.mkdtemp()) / "onnx"
        start = time.perf_counter()
        export_onnx(folder, expert=args.expert)
        print(f"export: {time.perf_counter() - start:.1f} s")
    model, source = model_to_export(args.expert)
    print(
        f"network: {model.config.name}, expert: {(source['expert'] or {}).get('name', 'none')}, threads {args.threads}"
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    encoder = ort.InferenceSession(str(folder / "encoder.onnx"), options, providers=["CPUExecutionProvider"])
    decoder = ort.InferenceSession(str(folder / "decoder.onnx"), options, providers=["CPUExecutionProvider"])
    print("batch | part | PyTorch s | ONNX Runtime s | max abs diff")
    for batch in (1, 2):
        x = example_inputs(model, batch=batch, clicks=2)
        with torch.no_grad():
            embedding = model.encode(x["image"])
            logits = model.decode(embedding, x["points"], x["point_labels"], x["mask_prompt"])
        feed = {"embedding": embedding.numpy(), **{k: x[k].numpy() for k in ("points", "point_labels", "mask_prompt")}}
        image = {"image": x["image"].numpy()}
        rows = [
            (
                "encoder",
                lambda x=x: model.encode(x["image"]),
                lambda image=image: encoder.run(None, image),
                np.abs(encoder.run(None, image)[0] - embedding.numpy()).max(),
            ),
            (
                "decoder",
                lambda x=x, e=embedding: model.decode(e, x["points"], x["point_labels"], x["mask_prompt"]),
                lambda feed=feed: decoder.run(None, feed),
                np.abs(decoder.run(None, feed)[0] - logits.numpy()).max(),
            ),
        ]
        for part, in_torch, in_ort, diff in rows:
            with torch.no_grad():
                t_torch = _median_seconds(in_torch, args.repeats)
            t_ort = _median_seconds(in_ort, args.repeats)
            print(f"{batch} | {part} | {t_torch:.3f} | {t_ort:.3f} | {diff:.1e}")


if __name__ == "__main__":
    main()
