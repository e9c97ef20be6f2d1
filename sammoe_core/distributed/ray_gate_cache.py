"""The retrain-gate cache filled on Ray: every candidate on every training prompt, on actors.

This is the expensive part of ``retrain-gate``; the gate itself then trains on one node from
the cache. Prompts travel as :class:`~sammoe_core.moe.gate_training.PromptRef` rows (a prepared case
in the volume cache, a class, a voxel: no voxel arrays); each actor builds the candidates once
(the foundation in use and the experts the driver named, checked by weight hash) and writes the
cache entries with the same :meth:`~sammoe_core.moe.gate_training.GateCache.entry` as the local path.
The cache and the prepared volumes live under ``SAMMOE_HOME``, which every node must share.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import torch

from sammoe_core.devices import resolve_device
from sammoe_core.distributed.ray_support import RayOptions, map_with_actors
from sammoe_core.errors import SammoeError
from sammoe_core.moe.gate_training import (
    CacheStats,
    Candidate,
    CandidateModels,
    GateCache,
    PromptRef,
    default_batch_size,
)


class GateCacheActor:
    """A Ray Data callable class: loads the candidates once, then caches a batch of prompts per call."""

    def __init__(self, cache_root: str, expected: dict[str, str], device: str) -> None:
        from sammoe_core.moe.retrain import load_candidates

        dev = resolve_device(device)
        chosen = load_candidates(dev, names=list(expected)[1:])
        if chosen.hashes() != expected:
            raise SammoeError(
                f"this Ray worker sees other gate candidates ({chosen.hashes()}) than the driver ({expected}); "
                "give every node the same SAMMOE_HOME"
            )
        self.cache = GateCache(cache_root)
        self.models = CandidateModels(dev)
        self.foundation, self.experts = chosen.candidates[0], chosen.candidates[1:]

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        refs = []
        for row in batch["prompt"]:
            fields = json.loads(str(row))
            fields.update(class_values=tuple(fields["class_values"]), centre=tuple(fields["centre"]))
            refs.append(PromptRef(**fields))
        stats = CacheStats()
        self.cache.entries([ref.load() for ref in refs], self.foundation, self.experts, self.models, stats)
        done = {"encoder_passes": stats.encoder_passes, "candidate_passes": stats.candidate_passes}
        return {"stats": np.array([json.dumps(done)], dtype=object)}


def fill_cache_on_ray(
    refs: list[PromptRef],
    cache: GateCache,
    candidates: list[Candidate],
    device: str,
    options: RayOptions,
    batch_size: int | None = None,
) -> CacheStats:
    """Compute on Ray actors the cache entries the prompts ``refs`` still miss, ``batch_size``
    prompts per call and batched pass (None: the default for the workers' device: a GPU where
    they have one); return what was computed."""
    todo = {ref.key: ref for ref in refs if not cache.complete(ref.key, candidates)}
    rows = [{"prompt": json.dumps(asdict(ref))} for ref in todo.values()]
    expected = {c.name: c.weights_sha256 for c in candidates}
    stats = CacheStats()
    if batch_size is None:
        batch_size = default_batch_size(torch.device("cuda") if options.gpus_per_worker else resolve_device(device))
    kwargs = {"cache_root": str(cache.root), "expected": expected, "device": device}
    for row in map_with_actors(rows, GateCacheActor, kwargs, options, rows_per_call=batch_size):
        done = json.loads(str(row["stats"]))
        stats.add(CacheStats(done["encoder_passes"], done["candidate_passes"]))
    return stats
