"""Device and precision selection: ``auto`` picks CUDA when present; fp32 is the reference."""

from __future__ import annotations

import contextlib
from typing import Literal

import torch

from sammoe_core.errors import InputError

Precision = Literal["fp32", "bf16"]


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' (or a torch.device) -> torch.device, checked."""
    if isinstance(spec, torch.device):
        dev = spec
    elif spec == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(spec)
        except RuntimeError:
            raise InputError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {spec!r} requested but CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"device {spec!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    elif dev.type != "cpu":
        raise InputError(f"unsupported device {spec!r}; use auto, cpu, cuda or cuda:N")
    return dev


def autocast(device: torch.device, precision: Precision = "fp32") -> contextlib.AbstractContextManager[None]:
    """A context that runs the network in ``precision`` on ``device`` (no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    raise ValueError(f"precision must be 'fp32' or 'bf16', not {precision!r}")
