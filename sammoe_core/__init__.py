"""sammoe: a frozen SAM-Med3D foundation plus pluggable finetuned experts, merged by a small gate.

The public API is imported lazily (``import sammoe_core`` stays light; torch loads on first use).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "segment": ("segment", None),
    "SegmentationResult": ("segment", "SegmentationResult"),
    "write_result": ("outputs", "write_result"),
    "segment_file": ("batch", "segment_file"),
    "segment_folder": ("batch", "segment_folder"),
    "Target": ("prompts", "Target"),
    "Prompt": ("prompts", "Prompt"),
    "Box": ("prompts", "Box"),
    "load_prompts": ("prompts", "load_prompts"),
    "next_click": ("prompts", "next_click"),
    "Volume": ("volumes", "Volume"),
    "read_volume": ("volumes", "read_volume"),
}


def __getattr__(name: str) -> Any:
    """``sammoe_core.segment`` is the (callable) module: ``sammoe_core.segment(...)`` segments."""
    if name not in _LAZY:
        raise AttributeError(f"module 'sammoe_core' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(f".{module_name}", __name__)
    return module if attribute is None else getattr(module, attribute)


__all__ = ["__version__", *_LAZY]
