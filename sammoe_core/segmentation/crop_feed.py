"""Crop embeddings for segmentation, several crops encoded in one pass where the predictor allows.

Segmentation asks a :class:`CropFeed` for one crop's embedding state at a time, naming the crops
that certainly come next: the crops edge extension has queued for the same target, and the first
crops of the targets after it. A crop the feed does not hold is sampled and encoded together with
up to ``crop_batch - 1`` of those, in one batched encoder pass (on CUDA one pass over eight crops
costs little more than one); the others wait in the feed until asked for. With ``crop_batch`` 1
(the CPU default) or a predictor without ``encode_batch``, each crop is encoded alone, when asked.

A ``cache`` (the interactive session keeps one per volume) is looked in first, and every crop
encoded is put there instead of held.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from sammoe_core.segmentation.predictor import CropPredictor


@dataclass(frozen=True)
class PlannedCrop:
    """A crop to encode: its cache key and how to sample it (-> normalised (S, S, S) crop, inside mask)."""

    key: Hashable
    sample: Callable[[], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class FedCrop:
    """A crop's embedding state, its inside mask, and the seconds sampling and encoding it took
    (0 when it was encoded earlier, alongside another crop or by an earlier call)."""

    state: Any
    inside: torch.Tensor
    sample_s: float = 0.0
    encode_s: float = 0.0


class CropFeed:
    """Hands out crop embeddings, encoding crops in batches of the predictor's ``crop_batch``."""

    def __init__(self, predictor: CropPredictor, cache: MutableMapping[Any, Any] | None = None) -> None:
        self.predictor = predictor
        self.cache = cache
        self.encode_batch = getattr(predictor, "encode_batch", None)
        self.batch = max(1, int(getattr(predictor, "crop_batch", 1))) if self.encode_batch else 1
        self._held: dict[Hashable, tuple[Any, torch.Tensor]] = {}

    def _has(self, key: Hashable) -> bool:
        return key in self._held or (self.cache is not None and key in self.cache)

    def _take(self, key: Hashable) -> tuple[Any, torch.Tensor] | None:
        if self.cache is not None and key in self.cache:
            return self.cache[key]  # type: ignore[no-any-return]
        return self._held.pop(key, None)

    def get(self, crop: PlannedCrop, upcoming: Sequence[PlannedCrop] = ()) -> FedCrop:
        """``crop``'s state and inside mask; ``upcoming``: crops that will be asked for next, in order."""
        found = self._take(crop.key)
        if found is not None:
            return FedCrop(*found)
        todo = [crop]
        for other in upcoming:
            if len(todo) >= self.batch:
                break
            if not self._has(other.key) and all(other.key != t.key for t in todo):
                todo.append(other)
        t0 = time.perf_counter()
        sampled = [planned.sample() for planned in todo]
        t1 = time.perf_counter()
        if len(todo) == 1:
            states = [self.predictor.encode(sampled[0][0][None, None])]
        else:
            assert self.encode_batch is not None  # batch > 1 only with encode_batch
            states = self.encode_batch(torch.stack([crop_ for crop_, _ in sampled])[:, None])
        t2 = time.perf_counter()
        store = self.cache if self.cache is not None else self._held
        for planned, (_, inside), state in zip(todo, sampled, states, strict=True):
            store[planned.key] = (state, inside)
        entry = self._take(crop.key)
        assert entry is not None
        return FedCrop(*entry, sample_s=t1 - t0, encode_s=t2 - t1)
