"""Shared fixtures: fresh random seeds (printed on failure) and random network weights."""

from __future__ import annotations

import os

import pytest

# sammoe's testing kit for plugin authors, plus the fixtures of the plugin and expert tests.
pytest_plugins = ["sammoe_core.testing", "tests.expert_fixtures"]


@pytest.fixture
def fresh_seed() -> int:
    """A new seed every run, so inputs differ run to run; printed so a failure can be replayed."""
    seed = int.from_bytes(os.urandom(4), "little")
    print(f"seed={seed}")
    return seed


def randomize_weights(model, seed: int) -> None:
    """Give every parameter and buffer a random value of a realistic scale.

    PyTorch's default init leaves relative-position tables and absolute positions at 0 and
    LayerNorm affines at 1/0, which would not exercise the official quirks; this draws them all.
    """
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(seed)

    def draw(t: torch.Tensor, std: float, mean: float = 0.0) -> None:
        t.copy_(mean + std * torch.randn(t.shape, generator=gen))

    with torch.no_grad():
        done = set()
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Conv3d, nn.ConvTranspose3d)):
                draw(module.weight, module.weight[0].numel() ** -0.5)
                if module.bias is not None:
                    draw(module.bias, 0.2)
            elif isinstance(module, nn.LayerNorm) or type(module).__name__ == "LayerNorm3d":
                draw(module.weight, 0.2, 1.0)
                draw(module.bias, 0.2)
            else:
                continue
            done.update(id(p) for p in module.parameters(recurse=False))
        for _, p in list(model.named_parameters()) + list(model.named_buffers()):
            if id(p) not in done and p.is_floating_point():
                draw(p, 0.5)
