"""Where the time of one ``sammoe segment`` goes, stage by stage, on the CPU and (when present) CUDA.

    python bench/end_to_end.py [VOLUME PROMPTS] [--device cpu,cuda] [--precision fp32,auto]
                               [--runtime default,eager] [--repeats 3]

Defaults to the shipped example volume and its prompts (8 targets). For the shared real CT, convert
it first (``examples/real_ct/prepare_real_ct.py``) and pass the NIfTI with a prompts file. For each
device it prints, as medians over ``--repeats`` runs in fresh processes:

- ``process``: the whole ``sammoe segment`` command (interpreter start to exit);
- ``imports``: ``import torch`` and the sammoe modules one segmentation needs;
- ``load``: building the predictor (foundation, experts, gate: read, sha256-checked, composed);
- ``read``: reading the volume; ``segment`` split into ``sample`` (crops resampled from the volume),
  ``encode``, ``decode`` (prompt encoder, gate, decoder(s)), ``paste`` (back onto the input grid),
  and ``other`` (overlap resolution, bookkeeping); ``write``: label map and sidecar;
- ``segment_cpu``: the CPU seconds of the process during ``segment`` (all threads; on a machine
  other work shares, a steadier figure than wall time).

One column per device, precision (``auto``: bf16 where the hardware computes it natively; the
row ``bf16`` says what auto chose) and, on CUDA, runtime: ``default`` (encoders replayed as CUDA
graphs, 8 crops per encoder pass) or ``eager`` (``--no-cuda-graphs --crop-batch 1``: one eager pass
per crop, the path before both existed).

Ratios between stages are meaningful within one run; machines here are noisy across runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "data"

# Runs in a fresh interpreter: times each stage of one segmentation through the public API.
_DRIVER = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
import sammoe_core
from sammoe_core.io.outputs import write_result
from sammoe_core.io.volumes import read_volume
from sammoe_core.segmentation.predictor_spec import PredictorSpec
from sammoe_core.segmentation.prompts import load_prompts
t1 = time.perf_counter()
volume_path, prompts_path, device, precision, out, runtime = sys.argv[1:7]
eager = {"crop_batch": 1, "cuda_graphs": False} if runtime == "eager" else {}
predictor = PredictorSpec(device=device, precision=precision, **eager).build()
if device.startswith("cuda"):
    torch.cuda.synchronize()
t2 = time.perf_counter()
volume = read_volume(volume_path)
targets = load_prompts(prompts_path)
t3 = time.perf_counter()
c3 = time.process_time()
result = sammoe_core.segment(volume, targets, predictor)
if device.startswith("cuda"):
    torch.cuda.synchronize()
t4 = time.perf_counter()
c4 = time.process_time()
write_result(result, out, overwrite=True)
t5 = time.perf_counter()
stages = {"sample": 0.0, "encode": 0.0, "decode": 0.0, "paste": 0.0}
crops = 0
for target in result.targets:
    crops += len(target.crops)
    for key in stages:
        stages[key] += target.timings.get(key + "_s", 0.0)
print(json.dumps({
    "imports": t1 - t0, "load": t2 - t1, "read": t3 - t2, "segment": t4 - t3, **stages,
    "other": (t4 - t3) - sum(stages.values()), "write": t5 - t4, "crops": crops, "targets": len(result.targets),
    "threads": torch.get_num_threads(), "segment_cpu": c4 - c3, "bf16": int(predictor.precision == "bf16"),
}))
"""

STAGES = (
    "process",
    "imports",
    "load",
    "read",
    "segment",
    "sample",
    "encode",
    "decode",
    "paste",
    "other",
    "write",
    "segment_cpu",
)


RUNTIME_FLAGS = {"default": [], "eager": ["--no-cuda-graphs", "--crop-batch", "1"]}


def run_once(volume: Path, prompts: Path, device: str, precision: str, runtime: str, work: Path) -> dict[str, float]:
    out = work / "seg.nii.gz"
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sammoe_core",
            "segment",
            str(volume),
            "--prompts",
            str(prompts),
            "-o",
            str(out),
            "--device",
            device,
            "--precision",
            precision,
            "--overwrite",
            "-q",
            *RUNTIME_FLAGS[runtime],
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    process = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"sammoe segment failed on {device}: {done.stderr.strip()}")
    staged = subprocess.run(
        [
            sys.executable,
            "-c",
            _DRIVER,
            str(volume),
            str(prompts),
            device,
            precision,
            str(work / "api.nii.gz"),
            runtime,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if staged.returncode:
        raise SystemExit(f"the staged run failed on {device}: {staged.stderr.strip()[-500:]}")
    return {"process": process, **json.loads(staged.stdout.strip().splitlines()[-1])}


def _column(device: str, precision: str, runtime: str) -> str:
    return f"{device}/{precision}" + ("" if runtime == "default" else f"/{runtime}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("volume", nargs="?", type=Path, default=EXAMPLE / "phantom_ct.nii.gz")
    ap.add_argument("prompts", nargs="?", type=Path, default=EXAMPLE / "phantom_ct.prompts.json")
    ap.add_argument("--device", default="cpu,cuda", help="comma-separated; cuda is skipped when absent")
    ap.add_argument("--precision", default="fp32,auto", help="comma-separated: fp32, bf16, auto")
    ap.add_argument("--runtime", default="default", help="comma-separated: default, eager (CUDA columns only)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import torch

    devices = [d for d in args.device.split(",") if d == "cpu" or (d.startswith("cuda") and torch.cuda.is_available())]
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        runtimes = args.runtime.split(",")
        columns = [
            (d, p, r)
            for d in devices
            for p in args.precision.split(",")
            for r in (runtimes if d.startswith("cuda") else runtimes[:1])
        ]
        runs: dict[str, list[dict[str, float]]] = {_column(*c): [] for c in columns}
        for _ in range(args.repeats):  # interleaved, so that a busy spell hits every column alike
            for device, precision, runtime in columns:
                run = run_once(args.volume, args.prompts, device, precision, runtime, Path(tmp))
                runs[_column(device, precision, runtime)].append(run)
        results = {c: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for c, rs in runs.items()}
    print(f"{args.volume.name}: medians of {args.repeats} runs, seconds")
    print(f"{'stage':<12}" + "".join(f"{c:>14}" for c in results))
    for stage in STAGES:
        print(f"{stage:<12}" + "".join(f"{results[c][stage]:>14.3f}" for c in results))
    for key in ("targets", "crops", "threads", "bf16"):
        print(f"{key:<12}" + "".join(f"{int(results[c][key]):>14d}" for c in results))
    first = next(iter(results))
    for c in list(results)[1:]:
        print(f"{first} / {c} segment ratio: {results[first]['segment'] / results[c]['segment']:.2f}")


if __name__ == "__main__":
    main()
