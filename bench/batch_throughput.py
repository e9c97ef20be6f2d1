"""Batch throughput: the local loop against Ray with 1 and 2 workers, on the same volumes.

``python bench/batch_throughput.py [--config sammoe-tiny] [--volumes 8] [--size 48] [--device cpu]
[--workers 1 2] [--gpus-per-worker 0] [--cpus-per-worker 1] [--threads N]``

Writes ``--volumes`` CT-like volumes (one click each) and a random foundation of ``--config``
to a temporary folder, then segments them once per engine into a fresh output folder and prints
one table: wall seconds (model loading included), volumes per minute, the mean seconds inside
the per-volume function (``fn s/vol``, ``segment_file``), the start-up (until the first result
minus its own seconds: actors, model loading), and the overhead per volume, i.e. the worker time
not spent in ``segment_file`` (``(wall * workers - sum of fn seconds) / volumes``), in all and
after the start-up (scheduling, result records, the run manifest). Ray hands results back in
blocks, so its first result can arrive late: the start-up is then overestimated and the overhead
after it reads near zero or slightly negative (within the noise). Ray's own start-up
(``ray.init``) is timed apart; on a cluster it is already running. ``--threads`` sets the local
loop's torch threads (default: ``--cpus-per-worker``, the threads each Ray actor gets), so the
engines compare like for like. The local loop runs twice: without and with its background
reading and writing (``local, no io`` / ``local loop``); ``--items-per-call`` gives Ray actors
several volumes per call.
On a GPU machine: ``--device cuda --gpus-per-worker 0.5`` puts both Ray workers on one GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sammoe_core.distributed import BatchReport

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def write_volumes(folder: Path, count: int, size: int) -> None:
    """``count`` CT-like volumes of ``size``³ voxels (1.5 mm), each with a prompts file."""
    import nibabel as nib
    import numpy as np

    folder.mkdir(parents=True)
    shape = (size, size, size)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"), -1)
    for i in range(count):
        rng = np.random.default_rng(i)
        body = (grid**2).sum(-1) < 0.7
        core = ((grid - 0.15) ** 2).sum(-1) < 0.08
        data = np.where(body, 40.0, -1000.0) + np.where(core, 160.0, 0.0) + rng.normal(0, 15, shape)
        image = nib.Nifti1Image(data.astype(np.int16), np.diag([1.5, 1.5, 1.5, 1.0]))
        image.to_filename(str(folder / f"case{i:03d}.nii.gz"))
        prompts = {"targets": [{"name": "core", "points": [[size // 2 + 2, size // 2, size // 2]]}]}
        (folder / f"case{i:03d}.prompts.json").write_text(json.dumps(prompts))


class Timed:
    """An engine wrapper that notes when the first result comes back."""

    def __init__(self, engine) -> None:
        self.engine, self.name = engine, engine.name
        self.first_result: float | None = None

    def describe(self):
        return self.engine.describe()

    def info(self):
        return self.engine.info()

    def run(self, items, settings):
        started = time.perf_counter()
        for record in self.engine.run(items, settings):
            if self.first_result is None:
                self.first_result = time.perf_counter() - started - record["seconds"]
            yield record


def row(name: str, workers: int, report: BatchReport, startup: float, load: float = 0.0) -> str:
    """One table row; ``load``: model loading done before the run, counted in its wall time."""
    done = [c for c in report.cases if c["status"] == "done"]
    inside = sum(c["seconds"] for c in done)
    n = max(len(done), 1)
    wall = report.seconds + load
    overhead = (wall * workers - inside) / n
    steady = ((wall - startup) * workers - inside) / n
    return (
        f"{name:<12}{workers:>8}{len(done):>8}{wall:>8.2f}{len(done) * 60 / wall:>12.1f}"
        f"{inside / n:>10.3f}{startup:>10.2f}{overhead:>12.3f}{steady:>12.3f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="sammoe-tiny")
    ap.add_argument("--volumes", type=int, default=8)
    ap.add_argument("--size", type=int, default=48, help="volume edge in voxels")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--gpus-per-worker", type=float, default=0.0)
    ap.add_argument("--cpus-per-worker", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads of the local loop")
    ap.add_argument("--items-per-call", type=int, default=1, help="volumes per Ray actor call")
    args = ap.parse_args()

    import torch

    from sammoe_core.distributed import LocalEngine, segment_batch
    from sammoe_core.distributed.ray_engine import RayEngine
    from sammoe_core.distributed.ray_support import RayOptions, import_ray
    from sammoe_core.segmentation.predictor_spec import PredictorSpec
    from sammoe_core.testing import make_test_foundation

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_volumes(root / "in", args.volumes, args.size)
        weights = make_test_foundation(root / "foundation.safetensors", config=args.config).weights
        spec = PredictorSpec(weights=str(weights), device=args.device)
        threads = args.threads or max(1, int(args.cpus_per_worker))
        torch.set_num_threads(threads)
        print(
            f"config {args.config}, {args.volumes} volumes of {args.size}^3, device {args.device}, "
            f"local loop on {threads} torch thread(s), Ray actors on {args.cpus_per_worker:g} CPU(s) "
            f"and {args.gpus_per_worker:g} GPU(s) each"
        )
        header = (
            f"{'engine':<12}{'workers':>8}{'volumes':>8}{'wall s':>8}{'volumes/min':>12}{'fn s/vol':>10}"
            f"{'start s':>10}{'overhead':>12}{'after start':>12}"
        )
        lines = [header]
        # two rounds, interleaved; the first only warms up (its rows are not shown)
        for round_, (name, overlap) in enumerate([("local, no io", False), ("local loop", True)] * 2):
            clock = time.perf_counter()
            engine = Timed(LocalEngine(spec.build(), overlap_io=overlap))
            load = time.perf_counter() - clock  # the model load counts, as it does in Ray's actors
            local = segment_batch(root / "in", root / f"out-local-{round_}", engine, quiet=True)
            if round_ >= 2:
                lines.append(row(name, 1, local, load + engine.first_result, load))
        ray = import_ray()
        started = time.perf_counter()
        cpus = max(2, int(max(args.workers) * args.cpus_per_worker))
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - started
        description = local.data["model"]
        for workers in args.workers:
            options = RayOptions(
                workers=workers,
                gpus_per_worker=args.gpus_per_worker,
                cpus_per_worker=args.cpus_per_worker,
                items_per_call=args.items_per_call,
                quiet=True,
            )
            engine = Timed(RayEngine(spec, options, description))
            report = segment_batch(root / "in", root / f"out-ray-{workers}", engine, quiet=True)
            lines.append(row("ray", workers, report, engine.first_result))
        ray.shutdown()
        print("\n".join(lines))
        print(f"ray.init (local Ray start, not in the walls above): {ray_start:.2f} s")


if __name__ == "__main__":
    main()
