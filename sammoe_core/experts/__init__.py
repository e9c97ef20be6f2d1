"""Experts: finetuned deltas over a foundation, described by a manifest, shipped by plugins or
added as folders, and the local registry that says which are enabled.

Importing this package does not import torch; weights are opened when an expert is used.
"""

from sammoe_core.experts.catalog import available_experts, enabled_experts, get_expert
from sammoe_core.experts.expert import Expert, ExpertSource, FoundationMismatch, save_expert
from sammoe_core.experts.manifest import ExpertManifest, read_manifest

__all__ = [
    "Expert",
    "ExpertManifest",
    "ExpertSource",
    "FoundationMismatch",
    "available_experts",
    "enabled_experts",
    "get_expert",
    "read_manifest",
    "save_expert",
]
