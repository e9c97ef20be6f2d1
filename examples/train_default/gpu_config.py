"""Write the GPU variant of foundation.json: the parallel phantom sets, batch 16, a time budget.

python examples/train_default/gpu_config.py DATA_DIR OUT.json BUDGET_S
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

GENERAL = ["body", "lung_left", "lung_right", "liver", "spleen", "kidney_left", "kidney_right", "bladder", "aorta"]


def main(data: Path, out: Path, budget: float, device: str = "cuda") -> None:
    base = json.loads((Path(__file__).parent / "foundation.json").read_text())
    ct = sorted(data.glob("ct-*"))
    mr = sorted(data.glob("mr-*"))
    sources = [{"path": str(p), "weight": 0.55 / len(ct), "classes": GENERAL} for p in ct]
    sources += [{"path": str(p), "weight": 0.2 / len(mr), "classes": GENERAL} for p in mr]
    sources += [{"path": "work/data/mni152", "weight": 0.125}, {"path": "work/data/colin27", "weight": 0.125}]
    base.update(
        {
            "num_clicks": 11,
            "data": sources,
            "lr": 0.0008,
            "steps": 1500,
            "warmup_steps": 60,
            "workers": 14 if device == "cuda" else 1,
            "device": device,
            "batch_size": 16 if device == "cuda" else 2,
            "log_every": 10,
            "max_wall_s": budget,
            "checkpoint_every_s": 60,
        }
    )
    out.write_text(json.dumps(base, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]), *sys.argv[4:5])
