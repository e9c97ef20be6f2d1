"""Install trained weights as the package's embedded default.

    python examples/train_default/install_default.py foundation RUN/model.safetensors
    python examples/train_default/install_default.py gate GATE_DIR

``foundation`` copies the weights to ``sammoe_core/weights/sammoe-small.safetensors`` (removing
any other weights file there) and writes ``foundation.json`` (its FoundationSpec: the built-in
name ``sammoe-small``, the network config its header records, the file, its sha256); ``gate``
copies a gate folder
made by ``sammoe retrain-gate`` to ``sammoe_core/weights/gates/default/`` (used whenever the
enabled experts are exactly the ones it was trained for).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from sammoe_core.experts.foundations import BUILTIN_FOUNDATION
from sammoe_core.files.hashing import sha256_file
from sammoe_core.model.checkpoint import read_metadata

WEIGHTS = Path(__file__).resolve().parents[2] / "sammoe_core" / "weights"


def install_foundation(src: Path) -> None:
    meta = read_metadata(src)
    target = WEIGHTS / f"{BUILTIN_FOUNDATION}.safetensors"
    WEIGHTS.mkdir(exist_ok=True)
    shutil.copyfile(src, target)
    for stale in WEIGHTS.glob("*.safetensors"):  # one embedded foundation
        if stale != target:
            stale.unlink()
    spec = {
        "name": BUILTIN_FOUNDATION,
        "config": meta["sammoe_config"],
        "weights": target.name,
        "sha256": sha256_file(target),
    }
    (WEIGHTS / "foundation.json").write_text(json.dumps(spec, indent=2) + "\n")
    print(json.dumps(spec, indent=2))


def install_gate(src: Path) -> None:
    target = WEIGHTS / "gates" / "default"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in ("gate.json", "gate.safetensors"):
        shutil.copyfile(src / name, target / name)
    print(f"gate installed in {target}")


if __name__ == "__main__":
    kind, path = sys.argv[1], Path(sys.argv[2])
    {"foundation": install_foundation, "gate": install_gate}[kind](path)
