"""Batch segmentation: many volumes, one per-volume function, a local loop or a Ray actor pool.

- :mod:`.item`: :func:`segment_file` (one volume, path in, outputs and a record out) and
  :func:`run_item` (the per-item call every engine makes).
- :mod:`.inputs`: items from a folder or a CSV/JSONL manifest; static shards (``--shard I/N``).
- :mod:`.run_manifest`: every input's status, so a rerun does only what is missing.
- :mod:`.engines` (local loop) and :mod:`.ray_engine` (Ray Data actors, the ``sammoe[ray]`` extra).
- :mod:`.run`: :func:`run_batch`, :func:`segment_batch`, :func:`segment_folder`: the driver.
"""

from __future__ import annotations

from sammoe_core.distributed.engines import Engine, LocalEngine
from sammoe_core.distributed.inputs import (
    PROMPTS_SUFFIX,
    BatchItem,
    Shard,
    folder_items,
    is_batch_input,
    is_manifest,
    list_items,
    manifest_items,
)
from sammoe_core.distributed.item import SegmentSettings, run_item, segment_file, weights_hashes
from sammoe_core.distributed.run import BatchReport, run_batch, segment_batch, segment_folder
from sammoe_core.distributed.run_manifest import RunManifest, manifest_path, read_manifest

__all__ = [
    "PROMPTS_SUFFIX",
    "BatchItem",
    "BatchReport",
    "Engine",
    "LocalEngine",
    "RunManifest",
    "SegmentSettings",
    "Shard",
    "folder_items",
    "is_batch_input",
    "is_manifest",
    "list_items",
    "manifest_items",
    "manifest_path",
    "read_manifest",
    "run_batch",
    "run_item",
    "segment_batch",
    "segment_file",
    "segment_folder",
    "weights_hashes",
]
