"""Small building blocks shared by the network parts: channel LayerNorm for 3D maps, MLPs, and
learned embeddings."""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn


def standard_normal(*shape: int) -> torch.Tensor:
    """A tensor drawn from N(0, 1) as ``torch.randn`` draws it (the same values from the same
    generator). On the meta device (how weights files are checked and loaded) it is left empty:
    drawing there detours through torch's Python reference kernels, whose first use imports
    ``torch._dynamo`` or sympy (about a second per process), and a meta tensor holds no values."""
    tensor = torch.empty(*shape)
    return tensor if tensor.is_meta else tensor.normal_()


def embedding(count: int, dim: int) -> nn.Embedding:
    """``nn.Embedding(count, dim)`` with torch's own initialisation (standard normal), drawn by
    :func:`standard_normal`."""
    return nn.Embedding(count, dim, _weight=standard_normal(count, dim))


class LayerNorm3d(nn.Module):
    """LayerNorm over the channel axis of a (B, C, D, H, W) map (biased variance, eps in sqrt)."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None, None] * x + self.bias[:, None, None, None]


class MLPBlock(nn.Module):
    """lin1 -> activation -> lin2 (the transformer MLP of encoder and decoder)."""

    def __init__(self, dim: int, hidden: int, act: type[nn.Module]) -> None:
        super().__init__()
        self.lin1 = nn.Linear(dim, hidden)
        self.lin2 = nn.Linear(hidden, dim)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.lin2(self.act(self.lin1(x))))


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU between them (hypernetworks and the IoU head)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x
