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
from sammoe_core.distributed.item import SegmentSettings, describe_predictor, run_item, start_item

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
    """One predictor in this process, the items one after another. With ``overlap_io`` (the
    default) a background thread reads the next volume and another writes the previous one's
    outputs while the current one is segmented, so the device waits for neither (at most three
    volumes are in memory then; an output written but not yet recorded when the process dies is
    redone by the rerun). ``overlap_io=False``: no threads."""

    name = "local"

    def __init__(self, predictor: CropPredictor, overlap_io: bool = True) -> None:
        self.predictor = predictor
        self.overlap_io = overlap_io

    def describe(self) -> dict[str, Any]:
        return describe_predictor(self.predictor)

    def info(self) -> dict[str, Any]:
        return {"engine": self.name, "overlap_io": self.overlap_io}

    def run(self, items: list[BatchItem], settings: SegmentSettings) -> Iterator[dict[str, Any]]:
        if not self.overlap_io:
            for item in items:
                yield run_item(item, self.predictor, settings)
            return
        from concurrent.futures import Future, ThreadPoolExecutor

        from sammoe_core.io.volumes import read_volume

        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="sammoe-read") as reader,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="sammoe-write") as writer,
        ):
            reads = deque(reader.submit(read_volume, item.input, settings.max_voxels) for item in items[:1])
            writing: Future[dict[str, Any]] | None = None
            for i, item in enumerate(items):
                if i + 1 < len(items):  # the next volume is read while this one is segmented
                    reads.append(reader.submit(read_volume, items[i + 1].input, settings.max_voxels))
                finish = start_item(item, self.predictor, settings, volume=reads.popleft().result)
                if writing is not None:
                    yield writing.result()
                writing = writer.submit(finish)  # written while the next one is segmented
            if writing is not None:
                yield writing.result()
