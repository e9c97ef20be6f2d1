"""How long the first ``sammoe retrain-gate`` takes after adding one expert to the default set,
in a fresh SAMMOE_HOME (no gate cache yet).

    python bench/first_retrain.py [--prompts-per-class N]

The added expert is a copy of the installed spinal-cord expert under another name (same weights,
its own calibration set), so nothing needs training; the gate then has five candidates. Prints
the wall time of `sammoe add-expert` and of `sammoe retrain-gate` (whole processes, as a user
runs them), the prompts the gate trained on and its held-out routing accuracy. The goal is at
most 3 minutes on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def sammoe(*args: str, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    command = [sys.executable, "-m", "sammoe_core", *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise SystemExit(f"sammoe {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - start, done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts-per-class", type=int, default=None, help="default: retrain-gate's own default")
    args = ap.parse_args()
    from sammoe_core.experts import available_experts

    source = available_experts()["spinal-cord"]
    with tempfile.TemporaryDirectory(prefix="sammoe-first-retrain-") as tmp:
        env = {**os.environ, "SAMMOE_HOME": str(Path(tmp) / "home")}
        copy = Path(tmp) / "cord-copy"
        shutil.copytree(source.folder, copy)
        manifest = json.loads((copy / "expert.json").read_text())
        manifest["name"] = "cord-copy"
        (copy / "expert.json").write_text(json.dumps(manifest, indent=2))
        added, _ = sammoe("add-expert", str(copy), env=env)
        extra = [] if args.prompts_per_class is None else ["--prompts-per-class", str(args.prompts_per_class)]
        trained, done = sammoe("retrain-gate", "--json", "-q", *extra, env=env)
        report = json.loads(done.stdout)
    print(f"add-expert (copy of spinal-cord): {added:.1f} s")
    print(
        f"first retrain-gate, fresh SAMMOE_HOME, {len(report['candidates'])} candidates: {trained:.1f} s "
        f"({report['prompts']} prompts, held-out routing accuracy {report.get('heldout_accuracy')})"
    )
    print(f"goal: <= 180 s -> {'met' if trained <= 180 else 'missed'}")


if __name__ == "__main__":
    main()
