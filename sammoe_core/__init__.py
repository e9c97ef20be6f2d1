"""sammoe: a frozen SAM-Med3D foundation plus pluggable finetuned experts, merged by a small gate.

The public API, typed: everything below is importable from ``sammoe_core`` directly. Importing
this package stays cheap (no torch, for a fast command line): ``hookimpl`` is ready at once,
every other name is imported on first access; type checkers see the real definitions.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from sammoe_core.plugins.hookspecs import hookimpl  # noqa: E402

if TYPE_CHECKING:
    from sammoe_core.deploy.bundle import build_from_bundle, write_bundle
    from sammoe_core.deploy.onnx_export import export_onnx
    from sammoe_core.distributed import BatchReport, SegmentSettings, segment_batch, segment_file, segment_folder
    from sammoe_core.errors import (
        HubError,
        InputError,
        OutputExistsError,
        PluginError,
        ResourceLimitError,
        SammoeError,
        StateError,
        WeightsError,
    )
    from sammoe_core.evaluation.evaluate import evaluate
    from sammoe_core.experts import Expert, available_experts, enabled_experts
    from sammoe_core.experts.foundations import FoundationSpec, resolve_foundation
    from sammoe_core.experts.manage import AddResult, add_expert, remove_expert
    from sammoe_core.hub.export import export_expert as export
    from sammoe_core.hub.publish import publish_expert as publish
    from sammoe_core.io.outputs import write_result
    from sammoe_core.io.volumes import Volume, read_volume
    from sammoe_core.model import Sam3D
    from sammoe_core.model.checkpoint import convert_checkpoint as convert
    from sammoe_core.moe.retrain import RetrainReport, retrain_gate
    from sammoe_core.moe.segmenter import MoESegmenter, build_from_registry
    from sammoe_core.segmentation.pipeline import SegmentationResult, segment
    from sammoe_core.segmentation.predictor import FoundationPredictor
    from sammoe_core.segmentation.predictor_spec import PredictorSpec
    from sammoe_core.segmentation.prompts import Box, Prompt, Target, load_prompts
    from sammoe_core.segmentation.session import Session
    from sammoe_core.training.finetune import FinetuneReport
    from sammoe_core.training.finetune import finetune_expert as finetune
    from sammoe_core.viewer.notebook import NotebookViewer

# name -> module holding it (imported on first access); "module:attribute" where the names differ
_LAZY: dict[str, str] = {
    "Session": "sammoe_core.segmentation.session",
    "NotebookViewer": "sammoe_core.viewer.notebook",
    "retrain_gate": "sammoe_core.moe.retrain",
    "RetrainReport": "sammoe_core.moe.retrain",
    "finetune": "sammoe_core.training.finetune:finetune_expert",
    "FinetuneReport": "sammoe_core.training.finetune",
    "add_expert": "sammoe_core.experts.manage",
    "AddResult": "sammoe_core.experts.manage",
    "remove_expert": "sammoe_core.experts.manage",
    "export": "sammoe_core.hub.export:export_expert",
    "publish": "sammoe_core.hub.publish:publish_expert",
    "convert": "sammoe_core.model.checkpoint:convert_checkpoint",
    "segment": "sammoe_core.segmentation.pipeline",
    "SegmentationResult": "sammoe_core.segmentation.pipeline",
    "write_result": "sammoe_core.io.outputs",
    "segment_file": "sammoe_core.distributed",
    "segment_folder": "sammoe_core.distributed",
    "segment_batch": "sammoe_core.distributed",
    "BatchReport": "sammoe_core.distributed",
    "SegmentSettings": "sammoe_core.distributed",
    "Target": "sammoe_core.segmentation.prompts",
    "Prompt": "sammoe_core.segmentation.prompts",
    "Box": "sammoe_core.segmentation.prompts",
    "load_prompts": "sammoe_core.segmentation.prompts",
    "MoESegmenter": "sammoe_core.moe.segmenter",
    "build_from_registry": "sammoe_core.moe.segmenter",
    "FoundationPredictor": "sammoe_core.segmentation.predictor",
    "PredictorSpec": "sammoe_core.segmentation.predictor_spec",
    "evaluate": "sammoe_core.evaluation.evaluate",
    "Volume": "sammoe_core.io.volumes",
    "read_volume": "sammoe_core.io.volumes",
    "Sam3D": "sammoe_core.model",
    "Expert": "sammoe_core.experts",
    "available_experts": "sammoe_core.experts",
    "enabled_experts": "sammoe_core.experts",
    "FoundationSpec": "sammoe_core.experts.foundations",
    "resolve_foundation": "sammoe_core.experts.foundations",
    "SammoeError": "sammoe_core.errors",
    "InputError": "sammoe_core.errors",
    "ResourceLimitError": "sammoe_core.errors",
    "WeightsError": "sammoe_core.errors",
    "PluginError": "sammoe_core.errors",
    "HubError": "sammoe_core.errors",
    "StateError": "sammoe_core.errors",
    "OutputExistsError": "sammoe_core.errors",
    "write_bundle": "sammoe_core.deploy.bundle",
    "build_from_bundle": "sammoe_core.deploy.bundle",
    "export_onnx": "sammoe_core.deploy.onnx_export",
}


def __getattr__(name: str) -> Any:
    """Import a public name on first access (the command line stays fast)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'sammoe_core' has no attribute {name!r}")
    module, _, attribute = _LAZY[name].partition(":")
    value = getattr(importlib.import_module(module), attribute or name)
    globals()[name] = value  # later lookups skip this function
    return value


__all__ = [  # the same names as _LAZY (tested), spelt out for type checkers and linters
    "__version__",
    "hookimpl",
    "Session",
    "NotebookViewer",
    "retrain_gate",
    "RetrainReport",
    "finetune",
    "FinetuneReport",
    "add_expert",
    "AddResult",
    "remove_expert",
    "export",
    "publish",
    "convert",
    "segment",
    "SegmentationResult",
    "write_result",
    "segment_file",
    "segment_folder",
    "segment_batch",
    "BatchReport",
    "SegmentSettings",
    "Target",
    "Prompt",
    "Box",
    "load_prompts",
    "MoESegmenter",
    "build_from_registry",
    "FoundationPredictor",
    "PredictorSpec",
    "evaluate",
    "Volume",
    "read_volume",
    "Sam3D",
    "Expert",
    "available_experts",
    "enabled_experts",
    "FoundationSpec",
    "resolve_foundation",
    "SammoeError",
    "InputError",
    "ResourceLimitError",
    "WeightsError",
    "PluginError",
    "HubError",
    "StateError",
    "OutputExistsError",
    "write_bundle",
    "build_from_bundle",
    "export_onnx",
]
