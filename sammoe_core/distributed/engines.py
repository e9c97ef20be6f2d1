"""Batch engines: what runs :func:`~sammoe_core.distributed.item.run_item` over the pending items.

An engine has a ``name``, ``describe()`` (the model it segments with, as the predictor describes
itself; its weight hashes go into the run manifest), ``info()`` (how it runs, for the report)
and ``run(items, settings)``, which yields one record per item as items finish, in any order.
:class:`LocalEngine` is the in-process loop; :class:`~sammoe_core.distributed.ray_engine.RayEngine`
spreads the same calls over a Ray actor pool.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from sammoe_core.distributed.inputs import BatchItem
from sammoe_core.distributed.item import SegmentSettings, describe_predictor, run_item

if TYPE_CHECKING:
    from sammoe_core.segmentation.predictor import CropPredictor


class Engine(Protocol):
    name: str

    def describe(self) -> dict[str, Any]:
        """The model's description (``predictor.describe()``)."""

    def info(self) -> dict[str, Any]:
        """How the engine runs, for the run report."""

    def run(self, items: list[BatchItem], settings: SegmentSettings) -> Iterator[dict[str, Any]]:
        """One :func:`run_item` record per item, as each finishes."""


class LocalEngine:
    """One predictor in this process, the items one after another; a background thread reads
    the next volume while the current one is segmented (``read_ahead=False``: no thread)."""

    name = "local"

    def __init__(self, predictor: CropPredictor, read_ahead: bool = True) -> None:
        self.predictor = predictor
        self.read_ahead = read_ahead

    def describe(self) -> dict[str, Any]:
        return describe_predictor(self.predictor)

    def info(self) -> dict[str, Any]:
        return {"engine": self.name, "read_ahead": self.read_ahead}

    def run(self, items: list[BatchItem], settings: SegmentSettings) -> Iterator[dict[str, Any]]:
        if not self.read_ahead:
            for item in items:
                yield run_item(item, self.predictor, settings)
            return
        from concurrent.futures import ThreadPoolExecutor

        from sammoe_core.io.volumes import read_volume

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sammoe-read") as reader:
            reads = deque(reader.submit(read_volume, item.input, settings.max_voxels) for item in items[:1])
            for i, item in enumerate(items):
                if i + 1 < len(items):  # the next volume is read while this one is segmented
                    reads.append(reader.submit(read_volume, items[i + 1].input, settings.max_voxels))
                yield run_item(item, self.predictor, settings, volume=reads.popleft().result)
