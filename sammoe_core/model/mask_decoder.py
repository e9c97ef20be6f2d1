"""The mask decoder of SAM-Med3D (``mask_decoder.*``): tokens + image embedding -> low-res logits.

Output tokens [iou, mask0..mask3] are prepended to the prompt tokens, refined by the two-way
transformer together with the image embedding (plus the dense prompt embedding), and mask token
0's hypernetwork is dotted with the 4x-upscaled image features. Every official script uses the
single-mask output (mask 0), so only that mask is computed; the other tokens' weights and the IoU
head are kept for checkpoint compatibility (the IoU head is never trained officially).
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from sammoe_core.model.configs import SamConfig
from sammoe_core.model.layers import MLP, LayerNorm3d, embedding
from sammoe_core.model.transformer import TwoWayTransformer3D


class MaskDecoder3D(nn.Module):
    def __init__(self, cfg: SamConfig) -> None:
        super().__init__()
        dim = cfg.prompt_dim
        self.transformer = TwoWayTransformer3D(
            dim, cfg.decoder_depth, cfg.decoder_heads, cfg.decoder_mlp_dim, cfg.attention_downsample_rate
        )
        self.num_mask_tokens = cfg.num_multimask_outputs + 1
        self.iou_token = embedding(1, dim)
        self.mask_tokens = embedding(self.num_mask_tokens, dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose3d(dim, dim // 4, kernel_size=2, stride=2),
            LayerNorm3d(dim // 4),
            nn.GELU(),
            nn.ConvTranspose3d(dim // 4, dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(MLP(dim, dim, dim // 8, 3) for _ in range(self.num_mask_tokens))
        self.iou_prediction_head = MLP(dim, cfg.iou_head_hidden_dim, self.num_mask_tokens, cfg.iou_head_depth)

    def forward(
        self,
        image_embedding: torch.Tensor,
        image_pe: torch.Tensor,
        sparse: torch.Tensor,
        dense: torch.Tensor,
    ) -> torch.Tensor:
        """Image (Bi, C, g, g, g), PE (1, C, g, g, g), sparse (B, N, C), dense (B, C, g, g, g).

        Bi is 1 or B. Returns mask-0 logits (B, 1, 4g, 4g, 4g).
        """
        b = sparse.shape[0]
        out_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([out_tokens[None].expand(b, -1, -1), sparse], dim=1)
        src = image_embedding.expand(b, -1, -1, -1, -1) + dense
        pos = image_pe.expand(b, -1, -1, -1, -1)
        _, c, gd, gh, gw = src.shape
        hs, src_tokens = self.transformer(src, pos, tokens)
        src = src_tokens.transpose(1, 2).reshape(b, c, gd, gh, gw)
        up = self.output_upscaling(src)
        hyper = self.output_hypernetworks_mlps[0](hs[:, 1, :])  # mask token 0
        bu, cu, x, y, z = up.shape
        return cast(torch.Tensor, (hyper[:, None, :] @ up.reshape(bu, cu, x * y * z)).reshape(bu, 1, x, y, z))
