"""sammoe: a frozen SAM-Med3D foundation plus pluggable finetuned experts, merged by a small gate.

Importing this package stays cheap (no torch): ``hookimpl`` is ready at once, the rest of the
public API is imported on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from .hookspecs import hookimpl  # noqa: E402

# name -> (module, attribute); attribute None means the module itself
_LAZY: dict[str, tuple[str, str | None]] = {
    "segment": ("sammoe_core.segment", None),
    "SegmentationResult": ("sammoe_core.segment", "SegmentationResult"),
    "write_result": ("sammoe_core.outputs", "write_result"),
    "segment_file": ("sammoe_core.batch", "segment_file"),
    "segment_folder": ("sammoe_core.batch", "segment_folder"),
    "segment_batch": ("sammoe_core.batch", "segment_batch"),
    "Target": ("sammoe_core.prompts", "Target"),
    "Prompt": ("sammoe_core.prompts", "Prompt"),
    "Box": ("sammoe_core.prompts", "Box"),
    "load_prompts": ("sammoe_core.prompts", "load_prompts"),
    "MoESegmenter": ("sammoe_core.moe.segmenter", "MoESegmenter"),
    "build_from_registry": ("sammoe_core.moe.segmenter", "build_from_registry"),
    "FoundationPredictor": ("sammoe_core.predictor", "FoundationPredictor"),
    "PredictorSpec": ("sammoe_core.predictor_spec", "PredictorSpec"),
    "evaluate": ("sammoe_core.evaluate", "evaluate"),
    "Volume": ("sammoe_core.volumes", "Volume"),
    "read_volume": ("sammoe_core.volumes", "read_volume"),
    "Sam3D": ("sammoe_core.model", "Sam3D"),
    "Expert": ("sammoe_core.experts", "Expert"),
    "available_experts": ("sammoe_core.experts", "available_experts"),
    "enabled_experts": ("sammoe_core.experts", "enabled_experts"),
    "FoundationSpec": ("sammoe_core.experts.foundations", "FoundationSpec"),
    "resolve_foundation": ("sammoe_core.experts.foundations", "resolve_foundation"),
    "SammoeError": ("sammoe_core.errors", "SammoeError"),
}


def __getattr__(name: str) -> Any:
    """Lazy public API. ``sammoe_core.segment`` is the (callable) module: calling it segments."""
    if name not in _LAZY:
        raise AttributeError(f"module 'sammoe_core' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)


__all__ = ["__version__", "hookimpl", *_LAZY]
