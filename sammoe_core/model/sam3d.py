"""Assembly of the three parts into one network with an explicit encode / decode API.

The official ``Sam3D.forward`` is a 2D-SAM leftover no script uses; this module offers what the
official inference really does instead:

* :meth:`Sam3D.encode`: z-normalised crop -> image embedding (run once per crop);
* :meth:`Sam3D.embed_prompts` and :meth:`Sam3D.decode_embedded`: prompt tokens -> low-res
  logits, split so a gate can look at the prompt embedding;
* :meth:`Sam3D.decode`: both in one call. With no mask prompt it feeds an all-zero low-res mask
  through ``mask_downscaling`` (the official first click), never ``no_mask_embed``;
* :meth:`Sam3D.upsample`: low-res logits -> crop-size logits (trilinear, align_corners=False).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from sammoe_core.model.configs import SamConfig, get_config
from sammoe_core.model.image_encoder import AttentionMode, ImageEncoder3D
from sammoe_core.model.mask_decoder import MaskDecoder3D
from sammoe_core.model.prompt_encoder import PromptEncoder3D


class Sam3D(nn.Module):
    """A SAM-Med3D network. State-dict keys equal the official checkpoint's."""

    def __init__(self, config: SamConfig | str) -> None:
        super().__init__()
        self.config = get_config(config) if isinstance(config, str) else config
        self.image_encoder = ImageEncoder3D(self.config)
        self.prompt_encoder = PromptEncoder3D(self.config)
        self.mask_decoder = MaskDecoder3D(self.config)

    @property
    def device(self) -> torch.device:
        return self.image_encoder.pos_embed.device

    def set_attention_mode(self, mode: AttentionMode) -> None:
        """'exact' (default, fast) or 'padded' (the literal padded-window computation)."""
        self.image_encoder.set_attention_mode(mode)

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 1, S, S, S) z-normalised crop -> (B, C, g, g, g) image embedding."""
        s = self.config.image_size
        if image.ndim != 5 or image.shape[1] != 1 or tuple(image.shape[2:]) != (s, s, s):
            raise ValueError(f"image must be (B, 1, {s}, {s}, {s}), got {tuple(image.shape)}")
        return cast(torch.Tensor, self.image_encoder(image))

    def zero_mask_prompt(self, batch: int = 1) -> torch.Tensor:
        """The all-zero low-res mask prompt the official first click uses."""
        low = self.config.low_res_size
        return torch.zeros(batch, 1, low, low, low, device=self.device)

    def embed_prompts(
        self,
        points: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        mask_prompt: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sparse (B, N, C) and dense (B, C, g, g, g) prompt embeddings.

        points: (B, N, 3) crop-voxel indices in tensor-axis order; point_labels: (B, N) with
        1 = positive, 0 = negative. mask_prompt: previous low-res logits (B, 1, L, L, L); None
        means the official all-zero prompt. boxes: (B, 2, 3) corners (box configs only).
        """
        batch = next((t.shape[0] for t in (points, boxes, mask_prompt) if t is not None), 1)
        if mask_prompt is None:
            mask_prompt = self.zero_mask_prompt(batch)
        return cast(tuple[torch.Tensor, torch.Tensor], self.prompt_encoder(points, point_labels, boxes, mask_prompt))

    def decode_embedded(self, embedding: torch.Tensor, sparse: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        """Image embedding + prompt embeddings -> low-res logits (B, 1, L, L, L)."""
        return cast(torch.Tensor, self.mask_decoder(embedding, self.prompt_encoder.dense_pe(), sparse, dense))

    def decode(
        self,
        embedding: torch.Tensor,
        points: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        mask_prompt: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Image embedding + prompts -> low-res logits (B, 1, L, L, L); see :meth:`embed_prompts`."""
        sparse, dense = self.embed_prompts(points, point_labels, mask_prompt, boxes)
        return self.decode_embedded(embedding, sparse, dense)

    def upsample(self, low_res_logits: torch.Tensor, size: int | None = None) -> torch.Tensor:
        """Low-res logits -> (B, 1, S, S, S) crop logits; a voxel is inside where the logit > 0."""
        s = size or self.config.image_size
        return F.interpolate(low_res_logits, size=(s, s, s), mode="trilinear", align_corners=False)
