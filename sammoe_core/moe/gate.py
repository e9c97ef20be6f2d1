"""The gate: scores each candidate (foundation + enabled experts) for one prompt on one crop.

Its input is what segmentation computes anyway (:class:`GateInput`): the foundation's image
embedding and the prompt tokens, so a gate costs next to nothing. Gate architectures are
registered by name through the ``register_gates`` hook; a factory takes the network config, the
number of candidates and its own hyper-parameters and returns a module mapping a GateInput to
(B, K) logits. The built-in ``mlp`` gate looks at the embedding at the click (sampled, and
pooled over its neighbourhood), the crop's mean embedding, and the mean prompt token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from sammoe_core.model import SamConfig


@dataclass
class GateInput:
    embedding: torch.Tensor  # (B, C, g, g, g) foundation image embedding
    sparse: torch.Tensor  # (B, N, C) foundation prompt tokens
    points: torch.Tensor  # (B, N', 3) crop-voxel clicks, tensor-axis order
    point_labels: torch.Tensor  # (B, N') 1 positive, 0 negative
    crop_size: int


def _anchor(points: torch.Tensor, labels: torch.Tensor, crop_size: int) -> torch.Tensor:
    """The first positive click of each element (the crop centre if none), as (B, 3)."""
    pos = labels == 1
    first = torch.where(pos.any(1), pos.float().argmax(1), torch.zeros_like(labels[:, 0]))
    anchor = points[torch.arange(points.shape[0]), first].float()
    centre = torch.full_like(anchor, (crop_size - 1) / 2)
    return torch.where(pos.any(1, keepdim=True), anchor, centre)


def sample_at(volume: torch.Tensor, voxel: torch.Tensor, crop_size: int) -> torch.Tensor:
    """Trilinearly sample (B, C, g, g, g) at crop voxel positions (B, 3) -> (B, C)."""
    norm = 2 * (voxel + 0.5) / crop_size - 1  # align_corners=False convention
    grid = norm.flip(-1)[:, None, None, None, :].to(volume.dtype)  # grid_sample wants (x, y, z)
    return F.grid_sample(volume, grid, mode="bilinear", align_corners=False)[:, :, 0, 0, 0]


def gate_features(inp: GateInput) -> torch.Tensor:
    """(B, 4C): embedding at the click, pooled around it, crop mean, mean prompt token."""
    anchor = _anchor(inp.points, inp.point_labels, inp.crop_size)
    pooled = F.avg_pool3d(inp.embedding, 3, stride=1, padding=1, count_include_pad=False)
    return torch.cat(
        [
            sample_at(inp.embedding, anchor, inp.crop_size),
            sample_at(pooled, anchor, inp.crop_size),
            inp.embedding.mean(dim=(2, 3, 4)),
            inp.sparse.mean(dim=1),
        ],
        dim=1,
    )


class MlpGateOptions(BaseModel):
    """Hyper-parameters of the built-in ``mlp`` gate (bounded: a gate file cannot ask for more)."""

    model_config = ConfigDict(extra="forbid")

    hidden: int = Field(128, ge=1, le=4096, description="width of the hidden layer")
    dropout: float = Field(0.1, ge=0.0, lt=1.0)


class MlpGate(nn.Module):
    """LayerNorm -> Linear -> GELU -> Dropout -> Linear over :func:`gate_features`.

    Gates that split into fixed ``features(inp)`` and a trainable ``head(features)`` (as this one
    does) are trained on features computed once, which makes retraining take seconds.
    """

    def __init__(self, config: SamConfig, num_candidates: int, hidden: int = 128, dropout: float = 0.1) -> None:
        super().__init__()
        dim = 4 * config.prompt_dim
        self.net = nn.Sequential(
            nn.LayerNorm(dim),
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_candidates),
        )

    def features(self, inp: GateInput) -> torch.Tensor:
        return gate_features(inp)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.net(features))

    def forward(self, inp: GateInput) -> torch.Tensor:
        return self.head(self.features(inp))


BUILTIN_GATES = {"mlp": (MlpGate, MlpGateOptions)}
