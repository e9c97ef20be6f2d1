"""sammoe: a frozen SAM-Med3D foundation plus pluggable finetuned experts, merged by a small gate.

Importing this package stays cheap (no torch): ``hookimpl`` is ready at once, the rest of the
public API is imported on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from .hookspecs import hookimpl

_LAZY = {
    "Expert": "sammoe_core.experts",
    "available_experts": "sammoe_core.experts",
    "enabled_experts": "sammoe_core.experts",
    "FoundationSpec": "sammoe_core.experts.foundations",
    "resolve_foundation": "sammoe_core.experts.foundations",
    "SammoeError": "sammoe_core.errors",
}

__all__ = [
    "Expert",
    "FoundationSpec",
    "SammoeError",
    "__version__",
    "available_experts",
    "enabled_experts",
    "hookimpl",
    "resolve_foundation",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sammoe_core' has no attribute {name!r}")
