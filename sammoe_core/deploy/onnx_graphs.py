"""The two graphs ``sammoe export-onnx`` writes, as modules with plain tensor inputs and outputs.

* :class:`EncoderGraph`: ``image`` (B, 1, S, S, S) float32, the z-normalised crop ->
  ``embedding`` (B, C, g, g, g). The same computation as :meth:`Sam3D.encode`.
* :class:`DecoderGraph`: ``embedding``, ``points`` (B, N, 3) float32 crop-voxel indices in
  tensor-axis order, ``point_labels`` (B, N) int64 (1 positive, 0 negative), ``mask_prompt``
  (B, 1, L, L, L) float32 (the previous low-res logits; zeros for a first click, as
  :meth:`Sam3D.decode` uses) -> ``low_res_logits`` (B, 1, L, L, L). The same computation as
  :meth:`Sam3D.decode` with clicks (a box prompt stays in PyTorch).

The batch B and the number of clicks N are dynamic in the exported files.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from sammoe_core.model import Sam3D

ENCODER_INPUTS = ("image",)
ENCODER_OUTPUTS = ("embedding",)
DECODER_INPUTS = ("embedding", "points", "point_labels", "mask_prompt")
DECODER_OUTPUTS = ("low_res_logits",)


class EncoderGraph(nn.Module):
    """The image encoder of ``model`` (its parameters shared, not copied)."""

    def __init__(self, model: Sam3D) -> None:
        super().__init__()
        self.image_encoder = model.image_encoder

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.image_encoder(image))


class DecoderGraph(nn.Module):
    """The prompt encoder and mask decoder of ``model`` for clicks and a mask prompt."""

    def __init__(self, model: Sam3D) -> None:
        super().__init__()
        self.prompt_encoder = model.prompt_encoder
        self.mask_decoder = model.mask_decoder

    def forward(
        self, embedding: torch.Tensor, points: torch.Tensor, point_labels: torch.Tensor, mask_prompt: torch.Tensor
    ) -> torch.Tensor:
        sparse, dense = self.prompt_encoder(points, point_labels, None, mask_prompt)
        return cast(torch.Tensor, self.mask_decoder(embedding, self.prompt_encoder.dense_pe(), sparse, dense))


def example_inputs(model: Sam3D, batch: int = 2, clicks: int = 2) -> dict[str, torch.Tensor]:
    """Inputs of both graphs (random, on the model's device), keyed by input name."""
    cfg, dev = model.config, model.device
    gen = torch.Generator().manual_seed(0)
    s, g, low = cfg.image_size, cfg.grid_size, cfg.low_res_size
    labels = torch.ones(batch, clicks, dtype=torch.long)
    labels[:, 1:] = torch.randint(0, 2, (batch, clicks - 1), generator=gen)
    tensors = {
        "image": torch.randn(batch, 1, s, s, s, generator=gen),
        "embedding": torch.randn(batch, cfg.prompt_dim, g, g, g, generator=gen),
        "points": torch.randint(0, s, (batch, clicks, 3), generator=gen).float(),
        "point_labels": labels,
        "mask_prompt": torch.randn(batch, 1, low, low, low, generator=gen),
    }
    return {k: v.to(dev) for k, v in tensors.items()}
