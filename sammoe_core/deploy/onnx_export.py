"""``sammoe export-onnx OUT``: the network (foundation, or an expert composed over it) as ONNX files.

OUT gets ``encoder.onnx`` and ``decoder.onnx`` (:mod:`~sammoe_core.deploy.onnx_graphs` says
what each computes; batch and number of clicks dynamic) and ``onnx.json`` naming the network
config, the weights they came from (foundation sha256, expert and delta sha256), each graph's
inputs and outputs with their shapes, the sha256 of both files, and the tolerance within which
they reproduce PyTorch (:data:`TOLERANCE`, tested with onnxruntime on CPU). Exported with the
``torch.export``-based exporter (``dynamo=True``); attention is traced with PyTorch's math
kernel, which the exporter decomposes faithfully. Needs ``pip install 'sammoe[onnx]'``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sammoe_core.errors import SammoeError

if TYPE_CHECKING:
    from sammoe_core.model import Sam3D

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
ONNX_MANIFEST = "onnx.json"
OPSET = 18
TOLERANCE = 1e-4  # max |ONNX Runtime (CPU) - PyTorch| on the embedding and on the low-res logits


@dataclass(frozen=True)
class OnnxExport:
    """What ``export-onnx`` wrote: the folder and its manifest (as written to ``onnx.json``)."""

    folder: Path
    manifest: dict[str, Any]


def require_onnx_exporter() -> None:
    """A one-line error unless the exporter's dependencies (onnx, onnxscript) are installed."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise SammoeError("ONNX export needs onnx and onnxscript: pip install 'sammoe[onnx]'") from None


def model_to_export(expert: str | None = None) -> tuple[Sam3D, dict[str, Any]]:
    """The foundation in use, or ``expert`` (a name or an expert folder) composed over it, on the
    CPU, with a description of its weights for the manifest. Loaded through the usual strict,
    sha256-checked loaders."""
    from sammoe_core.experts.foundations import resolve_foundation
    from sammoe_core.hub.export import find_expert

    spec = resolve_foundation()
    model = spec.load("cpu")
    source: dict[str, Any] = {"foundation": {"name": spec.name, "sha256": spec.sha256}, "expert": None}
    if expert is not None:
        chosen = find_expert(expert)
        model = chosen.build(model, spec.sha256)
        source["expert"] = {
            "name": chosen.name,
            "version": chosen.manifest.version,
            "weights_sha256": chosen.manifest.weights.sha256,
        }
    return model, source


def _shapes(model: Sam3D) -> dict[str, list[Any]]:
    cfg = model.config
    s, g, low, c = cfg.image_size, cfg.grid_size, cfg.low_res_size, cfg.prompt_dim
    return {
        "image": ["batch", 1, s, s, s],
        "embedding": ["batch", c, g, g, g],
        "points": ["batch", "clicks", 3],
        "point_labels": ["batch", "clicks"],
        "mask_prompt": ["batch", 1, low, low, low],
        "low_res_logits": ["batch", 1, low, low, low],
    }


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter's own prints, warnings and log lines (e.g. about torchvision) kept off the console."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _export_graph(graph: Any, inputs: dict[str, Any], outputs: tuple[str, ...], path: Path) -> None:
    """One graph to ``path``: dims named "batch" and "clicks" in :func:`_shapes` are dynamic."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    batch, clicks = torch.export.Dim("batch", min=1), torch.export.Dim("clicks", min=1)
    dynamic = {name: {0: batch} for name in inputs}
    for name in ("points", "point_labels"):
        if name in dynamic:
            dynamic[name] = {0: batch, 1: clicks}
    # The fused CPU attention kernel is recorded with an output layout its decomposition does not
    # keep (the export then fails on a view); the math kernel is traced as plain matmul + softmax.
    with sdpa_kernel(SDPBackend.MATH), _quiet_exporter():
        program = torch.onnx.export(
            graph.eval(),
            tuple(inputs.values()),
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_shapes=dynamic,
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
        if program is None:
            raise SammoeError("torch.onnx.export returned no program")
        program.save(str(path))


def export_onnx(
    out: str | Path,
    expert: str | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> OnnxExport:
    """Write ``encoder.onnx``, ``decoder.onnx`` and ``onnx.json`` to ``out`` (a new folder, or with
    ``overwrite`` an empty one or an earlier export; written beside it and renamed into place)."""
    import torch

    from sammoe_core import __version__
    from sammoe_core.deploy.onnx_graphs import (
        DECODER_INPUTS,
        DECODER_OUTPUTS,
        ENCODER_INPUTS,
        ENCODER_OUTPUTS,
        DecoderGraph,
        EncoderGraph,
        example_inputs,
    )
    from sammoe_core.files.atomic import atomic_folder, write_text_atomic
    from sammoe_core.files.hashing import sha256_file

    require_onnx_exporter()
    out = Path(out)
    if out.exists() and not overwrite:
        from sammoe_core.errors import OutputExistsError

        raise OutputExistsError(out)  # before minutes of export
    model, source = model_to_export(expert)
    inputs = example_inputs(model)
    shapes = _shapes(model)
    graphs = (
        ("encoder", ENCODER_FILE, EncoderGraph(model), ENCODER_INPUTS, ENCODER_OUTPUTS),
        ("decoder", DECODER_FILE, DecoderGraph(model), DECODER_INPUTS, DECODER_OUTPUTS),
    )
    described: dict[str, Any] = {}
    with atomic_folder(out, overwrite=overwrite, marker=ONNX_MANIFEST) as staging, torch.no_grad():
        for step, (name, file, graph, names, outputs) in enumerate(graphs, start=1):
            if progress is not None:
                progress(f"exporting {name} ({step}/{len(graphs)})")
            _export_graph(graph, {n: inputs[n] for n in names}, outputs, staging / file)
            described[name] = {
                "file": file,
                "sha256": sha256_file(staging / file),
                "inputs": {n: shapes[n] for n in names},
                "outputs": {n: shapes[n] for n in outputs},
            }
        manifest = {
            "format": "sammoe-onnx",
            "sammoe_version": __version__,
            "torch_version": torch.__version__,
            "opset": OPSET,
            "config": json.loads(model.config.model_dump_json()),
            **source,
            "graphs": described,
            "tolerance_max_abs": TOLERANCE,
        }
        write_text_atomic(staging / ONNX_MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return OnnxExport(out, manifest)
