"""Device and precision selection: ``auto`` picks CUDA when present; fp32 is the reference.

Precision ``auto`` runs the networks in bf16 autocast where the hardware computes bf16 natively
(CUDA devices that support it; CPUs with AMX or AVX-512 BF16 instructions) and in fp32 elsewhere;
``fp32`` is the exact mode, the one the official model and the parity tests use.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Literal

import torch

from sammoe_core.errors import InputError

Precision = Literal["fp32", "bf16"]
PRECISION_CHOICES = ("auto", "fp32", "bf16")
_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


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


def _cpu_bf16_flag() -> str | None:
    """The CPU's native bf16 instruction set (from /proc/cpuinfo; None where unknown or absent)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
            break
    return next((f for f in _BF16_CPU_FLAGS if f in flags), None)


def choose_precision(device: torch.device, requested: str = "auto") -> tuple[Precision, str]:
    """The precision to run in on ``device`` and why ('auto' decided from the hardware)."""
    if requested in ("fp32", "bf16"):
        return requested, "given by the caller"  # type: ignore[return-value]
    if requested != "auto":
        raise InputError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, not {requested!r}")
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16", f"auto: {torch.cuda.get_device_name(device)} computes bf16 natively"
        return "fp32", f"auto: {torch.cuda.get_device_name(device)} has no native bf16"
    flag = _cpu_bf16_flag()
    if flag is not None:
        return "bf16", f"auto: the CPU has {flag}"
    return "fp32", "auto: the CPU has neither AMX nor AVX-512 BF16"
