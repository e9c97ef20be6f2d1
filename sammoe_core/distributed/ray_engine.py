"""The Ray engine: the batch's items over a pool of Ray actors, each with its own predictor.

Ray Data carries each item as a small JSON row (paths, never voxel arrays). Every actor builds
its predictor once from a :class:`~sammoe_core.segmentation.predictor_spec.PredictorSpec` (weights path or
registry settings, device: with ``gpus_per_worker`` Ray gives the actor its GPU and ``auto``
picks it) and runs the items it is given through the same
:class:`~sammoe_core.distributed.engines.LocalEngine` as the local loop (reading ahead and writing
behind when it takes several at a time), so outputs are written atomically by the workers and only
result records come back. Inputs and the
output folder must be at the same paths on every node (a shared file system).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sammoe_core.distributed.engines import LocalEngine
from sammoe_core.distributed.inputs import BatchItem
from sammoe_core.distributed.item import SegmentSettings, describe_predictor
from sammoe_core.distributed.ray_support import RayOptions, map_with_actors
from sammoe_core.segmentation.predictor_spec import PredictorSpec


class SegmentActor:
    """A Ray Data callable class: builds the predictor once, then segments the items of each call."""

    def __init__(self, spec: PredictorSpec, settings: SegmentSettings) -> None:
        import os
        import socket

        self.settings = settings
        self.engine = LocalEngine(spec.build())
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        items = [BatchItem.from_dict(json.loads(str(row))) for row in batch["item"]]
        records = [json.dumps({**record, "worker": self.worker}) for record in self.engine.run(items, self.settings)]
        return {"record": np.array(records, dtype=object)}


class RayEngine:
    """Run items on a Ray actor pool (a running cluster at ``options.address``, or a local Ray)."""

    name = "ray"

    def __init__(
        self, spec: PredictorSpec, options: RayOptions | None = None, description: dict[str, Any] | None = None
    ) -> None:
        self.spec = spec
        self.options = options or RayOptions()
        self._description = description

    def describe(self) -> dict[str, Any]:
        """The model as the workers will build it (built once here, on the CPU, when not given)."""
        if self._description is None:
            self._description = describe_predictor(self.spec.on("cpu").build())
        return self._description

    def info(self) -> dict[str, Any]:
        return {"engine": self.name, "ray": self.options.to_dict()}

    def run(self, items: list[BatchItem], settings: SegmentSettings) -> Iterator[dict[str, Any]]:
        rows = [{"item": json.dumps(item.to_dict())} for item in items]
        kwargs = {"spec": self.spec, "settings": settings}
        for row in map_with_actors(rows, SegmentActor, kwargs, self.options, self.options.items_per_call):
            yield json.loads(str(row["record"]))
