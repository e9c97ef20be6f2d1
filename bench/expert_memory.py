"""Peak memory of a segmentation with 1 vs 20 installed experts (generated decoder-only deltas).

    python bench/expert_memory.py [--config sam-med3d-vit-b]

Each run is a fresh subprocess: a SAMMOE_HOME with N experts added, the MoE built from the
registry with one expert forced (policy fixed), one segmentation of a phantom. Experts are mapped
lazily, so only the chosen one is read: the ratio of peak RSS (20 / 1) should stay <= 1.10.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from _bench_support import make_home, phantom_volume


def _child(home: Path, volume: Path, click: list[int]) -> None:
    import os

    os.environ["SAMMOE_HOME"] = str(home)
    os.environ["SAMMOE_LOAD_PLUGINS"] = ""
    import sammoe_core
    from sammoe_core.moe.segmenter import build_from_registry

    seg = build_from_registry("cpu", expert="expert-00")
    sammoe_core.segment(volume, sammoe_core.Target(name="liver", points=[click]), seg, max_crops=1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_mib": peak, "experts": len(seg.candidates) - 1, "composed": len(seg._models) - 1}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="sam-med3d-vit-b")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(Path(args.child[0]), Path(args.child[1]), json.loads(args.child[2]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        volume, click = phantom_volume(tmp)
        peaks = {}
        for n in (1, 20):
            home = tmp / f"home{n}"
            make_home(home, args.config, n)
            delta = sum(p.stat().st_size for p in (home / "experts").rglob("model.safetensors")) / 2**20
            out = (
                subprocess.run(
                    [sys.executable, __file__, "--child", str(home), str(volume), json.dumps(click)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            peaks[n] = json.loads(out)
            print(
                f"{n:>2} experts installed ({delta:.0f} MiB of deltas on disk): "
                f"peak RSS {peaks[n]['peak_mib']:.0f} MiB, "
                f"{peaks[n]['composed']} expert(s) read"
            )
    print(f"ratio 20 / 1: {peaks[20]['peak_mib'] / peaks[1]['peak_mib']:.3f} (goal <= 1.10)")


if __name__ == "__main__":
    main()
