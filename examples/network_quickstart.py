"""Build a SAM-Med3D-shaped network, encode a 128³ crop once and decode two clicks.

Runs offline in seconds: ``python examples/network_quickstart.py [--config NAME] [--weights FILE]``.
With ``--weights`` (a file made by ``sammoe convert``) it uses real weights.
"""

from __future__ import annotations

import argparse
import time

import torch

from sammoe_core.model import Sam3D, config_names
from sammoe_core.model.checkpoint import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default="sammoe-small", choices=config_names())
    ap.add_argument("--weights", default=None, help="sammoe safetensors file")
    args = ap.parse_args()
    model = load_model(args.weights) if args.weights else Sam3D(args.config).eval()
    s = model.config.image_size
    crop = torch.randn(1, 1, s, s, s)
    with torch.no_grad():
        t0 = time.perf_counter()
        embedding = model.encode(crop)
        t1 = time.perf_counter()
        centre = torch.tensor([[[s // 2, s // 2, s // 2]]], dtype=torch.float32)
        logits = model.decode(embedding, centre, torch.tensor([[1]]))
        # a second click refines: the previous low-res logits are the mask prompt
        logits = model.decode(embedding, centre + 4, torch.tensor([[1]]), mask_prompt=logits)
        mask = model.upsample(logits) > 0
        t2 = time.perf_counter()
    print(f"config {model.config.name}: embedding {tuple(embedding.shape)}, mask {tuple(mask.shape)}")
    print(f"encode {t1 - t0:.3f} s, two clicks {t2 - t1:.3f} s, {int(mask.sum())} voxels inside")


if __name__ == "__main__":
    main()
