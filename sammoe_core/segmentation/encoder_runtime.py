"""How predictors run an image encoder: eagerly, or replayed as captured CUDA graphs.

A small encoder on a fast GPU waits on hundreds of kernel launches per crop, not on arithmetic.
On CUDA (unless switched off) an :class:`EncoderRunner` captures the encoder as a CUDA graph, in
the predictor's precision, for each crop-batch size it meets a second time, and replays it for
every later batch of that size: the crops are copied into the graph's input, one replay, the
output copied out. The first batch of a size runs eagerly (a one-off segmentation pays no
capture it would not win back; it is also the warm-up lazy initialisation needs); the second
pays one more warm-up pass and the capture. A capture that fails (an operation or a driver that
cannot be captured) warns once, and that runner stays eager with the reason recorded. Capture
errors are confined to the capturing thread, so a batch run's reader and writer threads or a
viewer's server threads may go on using the GPU meanwhile. On the CPU the encoder always runs
eagerly.

:func:`choose_crop_batch` says how many crops a predictor encodes at once: several on CUDA, where
one batched pass costs little more than one crop; one on the CPU, where batches were measured
slower on the 2-core development machine.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from sammoe_core.devices import Precision, autocast
from sammoe_core.errors import InputError
from sammoe_core.model import Sam3D

CUDA_CROP_BATCH = 8
CAPTURE_AT_USE = 2  # a batch size is captured the second time it is met


class CudaGraphWarning(UserWarning):
    """An encoder could not be captured as a CUDA graph; it runs eagerly (same results, slower)."""


def choose_crop_batch(device: torch.device, requested: int | None = None) -> int:
    """Crops encoded at once on ``device``: ``requested``, or 8 on CUDA and 1 on the CPU."""
    if requested is None:
        return CUDA_CROP_BATCH if device.type == "cuda" else 1
    if requested < 1:
        raise InputError(f"the crop batch must be at least 1, not {requested}")
    return int(requested)


def runtime_mode(device: torch.device, cuda_graphs: bool) -> tuple[str, str]:
    """('cuda-graph' or 'eager', why) for encoders on ``device``."""
    if device.type != "cuda":
        return "eager", "CUDA graphs exist only on CUDA"
    if not cuda_graphs:
        return "eager", "CUDA graphs switched off"
    return "cuda-graph", "CUDA: a crop-batch size runs eagerly at first, is captured at its second use, then replayed"


@dataclass
class _Captured:
    graph: Any  # torch.cuda.CUDAGraph
    inputs: torch.Tensor
    outputs: torch.Tensor


class EncoderRunner:
    """One network's image encoder in one precision: ``runner(crops)`` maps (B, 1, S, S, S) crops on
    the network's device to (B, C, g, g, g) float32 embeddings."""

    def __init__(self, model: Sam3D, precision: Precision = "fp32", cuda_graphs: bool = True) -> None:
        self.model = model
        self.precision: Precision = precision
        self.mode, self.reason = runtime_mode(model.device, cuda_graphs)
        self._graphs: dict[tuple[int, ...], _Captured] = {}
        self._uses: dict[tuple[int, ...], int] = {}

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        crops = crops.to(self.model.device)
        if self.mode == "cuda-graph":
            shape = tuple(crops.shape)
            self._uses[shape] = self._uses.get(shape, 0) + 1
            captured = self._graphs.get(shape)
            if captured is None and self._uses[shape] >= CAPTURE_AT_USE:
                captured = self._capture(crops)
            if captured is not None:
                captured.inputs.copy_(crops)
                captured.graph.replay()
                return captured.outputs.to(torch.float32, copy=True)
        with torch.no_grad(), autocast(self.model.device, self.precision):
            return self.model.encode(crops).float()

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        # the autocast weight cache would hold casts made during capture: off inside graphs
        if self.precision == "bf16":
            return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
        return contextlib.nullcontext()

    def _capture(self, crops: torch.Tensor) -> _Captured | None:
        """Capture the encoder for batches shaped like ``crops``; None (and eager from now on) on failure."""
        device = self.model.device
        try:
            with torch.no_grad(), torch.cuda.device(device):
                inputs = crops.clone()
                side = torch.cuda.Stream()  # type: ignore[no-untyped-call]
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side), self._autocast():
                    self.model.encode(inputs)  # a warm-up off the capture stream, as capture wants
                torch.cuda.current_stream().wait_stream(side)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, capture_error_mode="thread_local"), self._autocast():
                    outputs = self.model.encode(inputs)
        except Exception as e:  # noqa: BLE001 - any capture failure falls back to the eager path
            self.mode, self.reason = "eager", f"CUDA graph capture failed, running eagerly: {type(e).__name__}: {e}"
            warnings.warn(CudaGraphWarning(self.reason), stacklevel=3)
            return None
        captured = _Captured(graph, inputs, outputs)
        self._graphs[tuple(crops.shape)] = captured
        return captured


class EncoderRunners:
    """A predictor's encoder runners, one per (candidate, precision, graph switch), made on first use."""

    def __init__(self) -> None:
        self._runners: dict[tuple[str, str, bool], EncoderRunner] = {}

    def get(self, name: str, model: Sam3D, precision: Precision, cuda_graphs: bool) -> EncoderRunner:
        key = (name, precision, cuda_graphs)
        if key not in self._runners:
            self._runners[key] = EncoderRunner(model, precision, cuda_graphs)
        return self._runners[key]

    def describe(self, name: str, device: torch.device, precision: Precision, cuda_graphs: bool) -> dict[str, str]:
        """How candidate ``name``'s encoder runs (its runner's state once made; else what it will be)."""
        runner = self._runners.get((name, precision, cuda_graphs))
        mode, reason = (runner.mode, runner.reason) if runner else runtime_mode(device, cuda_graphs)
        return {"encoder_runtime": mode, "encoder_runtime_reason": reason}
