"""Give a trained sammoe-small foundation the two box-corner embeddings of the CVPR-2025 layout.

    python examples/train_default/grow_box.py IN.safetensors OUT.safetensors

Every tensor of IN is copied unchanged into a ``sammoe-small-box`` network; the only new tensors,
``prompt_encoder.point_embeddings.2`` and ``.3`` (the box corners), keep their fresh random
initialisation and are learnt when training continues with box prompts (``box_prob``). The keys
are checked both ways: IN must hold exactly the box-less network's tensors.
"""

from __future__ import annotations

import sys

import torch

from sammoe_core.files.hashing import sha256_file
from sammoe_core.model import Sam3D, get_config
from sammoe_core.model.checkpoint import load_weights, save_weights

NEW_KEYS = {"prompt_encoder.point_embeddings.2.weight", "prompt_encoder.point_embeddings.3.weight"}


def main(src: str, dst: str) -> None:
    state, meta = load_weights(src)
    torch.manual_seed(20261202)
    grown = Sam3D(get_config("sammoe-small-box")).state_dict()
    missing = set(grown) - set(state) - NEW_KEYS
    unexpected = set(state) - set(grown)
    if missing or unexpected or not NEW_KEYS.isdisjoint(state):
        raise SystemExit(
            f"{src}: not a box-less sammoe-small state (missing {sorted(missing)}, unexpected {sorted(unexpected)})"
        )
    for key, value in state.items():
        if grown[key].shape != value.shape:
            raise SystemExit(f"{src}: {key} has shape {tuple(value.shape)}, expected {tuple(grown[key].shape)}")
        grown[key] = value
    digest = save_weights(
        grown, dst, get_config("sammoe-small-box"), metadata={"grown_from": sha256_file(src)}, overwrite=True
    )
    print(f"{dst}: sha256 {digest}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
