"""The 3D ViT image encoder of SAM-Med3D (``image_encoder.*`` in the official state dict).

Patch embedding, learned absolute positions, pre-norm blocks with decomposed relative-position
attention (window blocks padded to one window, global blocks over the real grid), and a
conv/LayerNorm neck down to the prompt width. Parameter names match the official checkpoint.
"""

from __future__ import annotations

from typing import Literal, cast

import torch
import torch.nn.functional as F
from torch import nn

from sammoe_core.model.configs import SamConfig
from sammoe_core.model.layers import LayerNorm3d, MLPBlock
from sammoe_core.model.relpos_attention import padded_window_attention_literal, relpos_attention

AttentionMode = Literal["exact", "padded"]


class PatchEmbed3D(nn.Module):
    """Cubic patches to tokens. Holds the official Conv3d weights, runs as reshape + matmul."""

    def __init__(self, patch_size: int, in_chans: int, dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv3d(in_chans, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, d, h, w = x.shape
        p = self.patch_size
        gd, gh, gw = d // p, h // p, w // p
        patches = x.reshape(b, c, gd, p, gh, p, gw, p).permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(b, gd, gh, gw, c * p**3)
        weight = self.proj.weight.reshape(self.proj.out_channels, -1)
        return F.linear(patches, weight, self.proj.bias)  # (B, gd, gh, gw, dim)


class RelPosAttention(nn.Module):
    """Multi-head self-attention with SAM-Med3D's decomposed relative positions."""

    def __init__(self, dim: int, num_heads: int, extent: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.extent = extent
        head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)
        self.rel_pos_d = nn.Parameter(torch.zeros(2 * extent - 1, head_dim))
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * extent - 1, head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * extent - 1, head_dim))
        self.mode: AttentionMode = "exact"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, g = x.shape[0], x.shape[1]
        tables = (self.rel_pos_d, self.rel_pos_h, self.rel_pos_w)
        if self.mode == "padded" and self.extent > g:
            out = padded_window_attention_literal(x, self.qkv, self.num_heads, tables, self.extent)
        else:
            n = g**3
            qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)
            bias = self.qkv.bias.reshape(3, self.num_heads, -1) if self.qkv.bias is not None else None
            out = relpos_attention(q, k, v, bias, tables, self.extent)
        out = out.permute(0, 2, 1, 3).reshape(b, g, g, g, -1)
        return cast(torch.Tensor, self.proj(out))


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, extent: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = RelPosAttention(dim, num_heads, extent)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, int(dim * mlp_ratio), nn.GELU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return cast(torch.Tensor, x + self.mlp(self.norm2(x)))


class ImageEncoder3D(nn.Module):
    """(B, 1, S, S, S) z-normalised crop -> (B, prompt_dim, g, g, g) image embedding."""

    def __init__(self, cfg: SamConfig) -> None:
        super().__init__()
        g = cfg.grid_size
        self.patch_embed = PatchEmbed3D(cfg.patch_size, 1, cfg.encoder_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, g, g, g, cfg.encoder_dim))
        self.blocks = nn.ModuleList(
            EncoderBlock(
                cfg.encoder_dim,
                cfg.encoder_heads,
                cfg.mlp_ratio,
                extent=g if (i in cfg.global_attn_indexes or cfg.window_size == 0) else cfg.window_size,
            )
            for i in range(cfg.encoder_depth)
        )
        self.neck = nn.Sequential(
            nn.Conv3d(cfg.encoder_dim, cfg.prompt_dim, kernel_size=1, bias=False),
            LayerNorm3d(cfg.prompt_dim),
            nn.Conv3d(cfg.prompt_dim, cfg.prompt_dim, kernel_size=3, padding=1, bias=False),
            LayerNorm3d(cfg.prompt_dim),
        )

    def set_attention_mode(self, mode: AttentionMode) -> None:
        """'exact' (fast, default) or 'padded' (the literal 14³ computation, for debugging)."""
        if mode not in ("exact", "padded"):
            raise ValueError(f"attention mode must be 'exact' or 'padded', not {mode!r}")
        for blk in self.blocks:
            cast(EncoderBlock, blk).attn.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return cast(torch.Tensor, self.neck(x.permute(0, 4, 1, 2, 3)))
