"""Run (or resume) one training run of the embedded default from a JSON config.

    python examples/train_default/train.py CONFIG.json RUN_DIR [--cache DIR] [--quiet]

Interrupt it at any time: started again with the same arguments it resumes from its last
checkpoint (written every few minutes). Paths in the config are relative to the repo root.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sammoe_core.training import TrainConfig, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("run_dir")
    ap.add_argument("--cache", default="work/cache")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--steps", type=int, help="override the config's step count (smoke tests)")
    args = ap.parse_args()
    cfg = TrainConfig.model_validate_json(Path(args.config).read_text())
    if args.steps is not None:
        cfg = cfg.model_copy(update={"steps": args.steps, "warmup_steps": min(cfg.warmup_steps, args.steps)})
    summary = train(cfg, args.run_dir, cache_dir=args.cache, progress=not args.quiet)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
