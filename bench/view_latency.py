"""Click latency of ``sammoe view``: the HTTP API the page uses, over a real socket.

``python bench/view_latency.py [--volume examples/data/phantom_ct.nii.gz] [--prompts FILE.json]
[--further 5] [--threads 2] [--device cpu]``

Starts the viewer's app (uvicorn, 127.0.0.1, the shipped default mixture of experts unless
``--weights``), then for every target of the prompts file (default: the README example's eight
structures) posts its first click and ``--further`` more clicks near it (alternately negative and
positive, 2-4 voxels away, seeded), each followed by the label-map download the page makes. Prints
per click kind (first: the crop's encoder runs; further: cached embeddings) the median and p95 of
the server time of the click request, and of the whole round trip (click request + label map),
and how many further clicks still needed an encoder pass (a click that grows the mask into a new
crop). ``--volume`` takes a DICOM series folder too; then give ``--prompts`` with voxel clicks.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", default=str(ROOT / "examples" / "data" / "phantom_ct.nii.gz"))
    parser.add_argument("--prompts", default=str(ROOT / "examples" / "data" / "phantom_ct.prompts.json"))
    parser.add_argument("--further", type=int, default=5, help="further clicks per target")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--weights", default=None, help="one network instead of the default MoE")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import httpx
    import torch

    from sammoe_core.io.volumes import read_volume
    from sammoe_core.segmentation.predictor_spec import PredictorSpec
    from sammoe_core.segmentation.session import Session
    from sammoe_core.viewer.app import create_app
    from sammoe_core.viewer.server import check_port, serve_in_background
    from sammoe_core.viewer.state import SavePlan, ViewerState

    if args.threads:
        torch.set_num_threads(args.threads)
    targets = json.loads(Path(args.prompts).read_text())["targets"]
    t0 = time.perf_counter()
    volume = read_volume(args.volume)
    session = Session(volume, PredictorSpec(weights=args.weights, device=args.device).build())
    ready_s = time.perf_counter() - t0
    print(f"volume {volume.shape}, model ready in {ready_s:.1f} s, torch threads {torch.get_num_threads()}")
    out = Path(tempfile.mkdtemp()) / "bench_seg.nii.gz"
    app = create_app(ViewerState(session, SavePlan(out, args.volume)))
    port = check_port("127.0.0.1", 0)
    server = serve_in_background(app, "127.0.0.1", port)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-Sammoe": "1"}, timeout=120)
    rng = np.random.default_rng(args.seed)
    shape = np.asarray(volume.shape)
    rows: dict[str, dict[str, list[float]]] = {k: {"server": [], "round_trip": []} for k in ("first", "further")}
    encoded_further = 0
    client.get("/api/labels")  # the page's first overlay (empty)
    for target in targets:
        name = target["name"]
        client.post("/api/targets", json={"name": name}).raise_for_status()
        first = np.asarray(target["points"][0], dtype=float)
        clicks = [(first, True)]
        for i in range(args.further):
            offset = rng.integers(2, 5, size=3) * rng.choice([-1, 1], size=3)
            clicks.append((np.clip(first + offset, 0, shape - 1), i % 2 == 1))
        for k, (position, positive) in enumerate(clicks):
            started = time.perf_counter()
            response = client.post(
                f"/api/targets/{name}/clicks", json={"position": position.tolist(), "positive": positive}
            )
            response.raise_for_status()
            client.get("/api/labels").raise_for_status()
            total = (time.perf_counter() - started) * 1000.0
            last = response.json()["last"]
            kind = "first" if k == 0 else "further"
            rows[kind]["server"].append(last["server_ms"])
            rows[kind]["round_trip"].append(total)
            if kind == "further" and last["encoder_passes"]:
                encoded_further += 1
    client.close()
    server.should_exit = True

    print(f"{len(targets)} targets, {args.further} further clicks each")
    print("| click | n | server median | server p95 | round trip median | round trip p95 |")
    print("|---|---|---|---|---|---|")
    for kind, values in rows.items():
        server_ms, round_trip = values["server"], values["round_trip"]
        print(
            f"| {kind} | {len(server_ms)} | {statistics.median(server_ms):.0f} ms | {percentile(server_ms, 95):.0f} ms "
            f"| {statistics.median(round_trip):.0f} ms | {percentile(round_trip, 95):.0f} ms |"
        )
    print(f"further clicks that still ran the encoder (mask grew into a new crop): {encoded_further}")


if __name__ == "__main__":
    main()
