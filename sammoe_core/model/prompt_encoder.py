"""The prompt encoder of SAM-Med3D (``prompt_encoder.*``): points, boxes and mask prompts.

Points are crop-voxel indices in tensor-axis order (what ``torch.argwhere`` gives). The
random-Fourier encoding emits ``[sin, cos, sin]``, and the dense grid encoding swaps the first
two axes relative to the point encoding; both are official quirks the weights were trained
with and are kept as they are.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn

from sammoe_core.model.configs import SamConfig
from sammoe_core.model.layers import LayerNorm3d, embedding, standard_normal


class RandomFourierPE3D(nn.Module):
    """Random spatial-frequency encoding of coordinates in [0, 1]³ (buffer is in the checkpoint)."""

    positional_encoding_gaussian_matrix: torch.Tensor

    def __init__(self, num_feats: int) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", standard_normal(3, num_feats))

    def encode(self, coords01: torch.Tensor) -> torch.Tensor:
        """(..., 3) coordinates in [0, 1] -> (..., 3 * num_feats) features ``[sin, cos, sin]``."""
        proj = (2 * coords01 - 1) @ self.positional_encoding_gaussian_matrix
        proj = 2 * math.pi * proj
        s = torch.sin(proj)
        return torch.cat([s, torch.cos(proj), s], dim=-1)

    def grid(self, size: int) -> torch.Tensor:
        """The dense PE of a size³ grid as (C, size, size, size), axes 0 and 1 swapped."""
        dev = self.positional_encoding_gaussian_matrix.device
        centres = (torch.arange(size, device=dev, dtype=torch.float32) + 0.5) / size
        i0, i1, i2 = torch.meshgrid(centres, centres, centres, indexing="ij")
        return self.encode(torch.stack([i1, i0, i2], dim=-1)).permute(3, 0, 1, 2)


class PromptEncoder3D(nn.Module):
    """Sparse tokens from points/boxes and a dense embedding from a low-res mask prompt."""

    def __init__(self, cfg: SamConfig) -> None:
        super().__init__()
        dim = cfg.prompt_dim
        self.embed_dim = dim
        self.image_size = cfg.image_size
        self.grid_size = cfg.grid_size
        self.pe_layer = RandomFourierPE3D(dim // 3)
        self.point_embeddings = nn.ModuleList(embedding(1, dim) for _ in range(cfg.num_point_embeddings))
        self.not_a_point_embed = embedding(1, dim)
        c = cfg.mask_in_chans
        self.mask_downscaling = nn.Sequential(
            nn.Conv3d(1, c // 4, kernel_size=2, stride=2),
            LayerNorm3d(c // 4),
            nn.GELU(),
            nn.Conv3d(c // 4, c, kernel_size=2, stride=2),
            LayerNorm3d(c),
            nn.GELU(),
            nn.Conv3d(c, dim, kernel_size=1),
        )
        self.no_mask_embed = embedding(1, dim)

    def dense_pe(self) -> torch.Tensor:
        """Positional encoding of the image-embedding grid, (1, C, g, g, g)."""
        return self.pe_layer.grid(self.grid_size)[None]

    def _point_embedding(self, index: int) -> torch.Tensor:
        """The (1, C) weight of ``point_embeddings[index]`` (0 negative, 1 positive, 2/3 box corners)."""
        return cast(nn.Embedding, self.point_embeddings[index]).weight

    def _encode_coords(self, coords: torch.Tensor) -> torch.Tensor:
        return self.pe_layer.encode((coords + 0.5) / self.image_size)

    def embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        """(B, N, 3) voxel coords + (B, N) labels (1 pos, 0 neg, -1 none) -> (B, N[+1], C)."""
        points = points.float()
        labels = labels.to(points.device)
        if pad:
            points = torch.cat([points, points.new_full((points.shape[0], 1, 3), -0.5)], dim=1)
            labels = torch.cat([labels, labels.new_full((labels.shape[0], 1), -1)], dim=1)
        emb = self._encode_coords(points)
        lab = labels[..., None]
        emb = torch.where(lab == -1, self.not_a_point_embed.weight, emb)
        emb = emb + (lab == 0) * self._point_embedding(0)
        emb = emb + (lab == 1) * self._point_embedding(1)
        return emb

    def embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """(B, 2, 3) or (B, 6) corner voxel coords -> (B, 2, C) corner tokens (box configs only)."""
        if len(self.point_embeddings) < 4:
            raise ValueError(
                "this model config has no box embeddings (point_embeddings.2/.3); "
                "use a box-capable config such as 'sam-med3d-vit-b-box'"
            )
        corners = self._encode_coords(boxes.float().reshape(-1, 2, 3))
        corners = corners + torch.stack([self._point_embedding(2)[0], self._point_embedding(3)[0]])
        return corners

    def embed_mask(self, mask_logits: torch.Tensor | None, batch: int) -> torch.Tensor:
        """(B, 1, L, L, L) low-res logits -> (B, C, g, g, g); None -> the no-mask embedding."""
        if mask_logits is not None:
            return cast(torch.Tensor, self.mask_downscaling(mask_logits))
        g = self.grid_size
        return self.no_mask_embed.weight.reshape(1, -1, 1, 1, 1).expand(batch, -1, g, g, g)

    def forward(
        self,
        points: torch.Tensor | None,
        labels: torch.Tensor | None,
        boxes: torch.Tensor | None,
        mask_logits: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sparse (B, N, C) and dense (B, C, g, g, g) prompt embeddings."""
        if points is not None:
            batch = points.shape[0]
        elif boxes is not None:
            batch = boxes.shape[0]
        elif mask_logits is not None:
            batch = mask_logits.shape[0]
        else:
            batch = 1
        weight = self.not_a_point_embed.weight
        sparse = [weight.new_zeros(batch, 0, self.embed_dim)]
        if points is not None:
            if labels is None:
                raise ValueError("points need labels (1 positive, 0 negative)")
            sparse.append(self.embed_points(points, labels, pad=boxes is None))
        if boxes is not None:
            sparse.append(self.embed_boxes(boxes))
        return torch.cat(sparse, dim=1), self.embed_mask(mask_logits, batch)
