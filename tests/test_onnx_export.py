"""``sammoe export-onnx``: ONNX Runtime on CPU reproduces PyTorch within the documented tolerance."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from sammoe_core.cli import main
from sammoe_core.deploy.onnx_export import TOLERANCE
from sammoe_core.files.hashing import sha256_file

REPO = Path(__file__).resolve().parent.parent
EXPERT = "hip"  # a first-party plugin (installed for the test suite); decoder-only


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, list(args))
    assert (result.exit_code == 0) == ok, result.output
    return result


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """The hip expert composed over the shipped foundation, exported by the command line."""
    root = tmp_path_factory.mktemp("onnx")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAMMOE_HOME", str(root / "home"))
        run("export-onnx", str(root / "out"), "--expert", EXPERT, "-q")
    return root / "out"


@pytest.fixture(scope="module")
def networks(exported):
    """(foundation, expert) in PyTorch, loaded the usual strict way."""
    from sammoe_core.experts.catalog import get_expert
    from sammoe_core.experts.foundations import resolve_foundation

    spec = resolve_foundation()
    foundation = spec.load("cpu")
    return foundation, get_expert(EXPERT).build(foundation, spec.sha256)


def session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def inputs(batch: int, clicks: int, low: int, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (batch, clicks), generator=gen)
    labels[:, 0] = 1
    mask = torch.randn(batch, 1, low, low, low, generator=gen) * 4
    if seed % 2:  # a first click: the all-zero mask prompt
        mask.zero_()
    return {
        "image": torch.randn(batch, 1, 128, 128, 128, generator=gen),
        "points": torch.randint(0, 128, (batch, clicks, 3), generator=gen).float(),
        "point_labels": labels,
        "mask_prompt": mask,
    }


@pytest.mark.slow
@pytest.mark.parametrize(("batch", "clicks"), [(1, 1), (2, 3)])
def test_onnx_runtime_reproduces_pytorch_within_the_tolerance(exported, networks, batch, clicks, fresh_seed):
    foundation, expert = networks
    x = inputs(batch, clicks, expert.config.low_res_size, fresh_seed)
    with torch.no_grad():
        embedding = expert.encode(x["image"])
        logits = expert.decode(embedding, x["points"], x["point_labels"], x["mask_prompt"])
        foundation_logits = foundation.decode(embedding, x["points"], x["point_labels"], x["mask_prompt"])
    (onnx_embedding,) = session(exported / "encoder.onnx").run(None, {"image": x["image"].numpy()})
    feed = {"embedding": embedding.numpy(), **{k: x[k].numpy() for k in ("points", "point_labels", "mask_prompt")}}
    (onnx_logits,) = session(exported / "decoder.onnx").run(None, feed)
    assert onnx_embedding.shape == tuple(embedding.shape) and onnx_logits.shape == tuple(logits.shape)
    embedding_error = float(np.abs(onnx_embedding - embedding.numpy()).max())
    logits_error = float(np.abs(onnx_logits - logits.numpy()).max())
    print(f"max abs error: embedding {embedding_error:.2e}, logits {logits_error:.2e}")
    assert embedding_error <= TOLERANCE and logits_error <= TOLERANCE
    # the file holds the expert's decoder, not the foundation's: their difference is far above the tolerance
    assert float(np.abs(onnx_logits - foundation_logits.numpy()).max()) > 100 * TOLERANCE
    # and the masks (logit > 0) agree wherever a logit is not within the tolerance of 0
    decided = np.abs(logits.numpy()) > TOLERANCE
    assert np.array_equal((onnx_logits > 0)[decided], (logits.numpy() > 0)[decided])


@pytest.mark.slow
def test_the_manifest_names_shapes_hashes_source_and_tolerance(exported):
    manifest = json.loads((exported / "onnx.json").read_text())
    for graph in manifest["graphs"].values():
        assert sha256_file(exported / graph["file"]) == graph["sha256"]
    assert manifest["graphs"]["encoder"]["inputs"]["image"] == ["batch", 1, 128, 128, 128]
    assert manifest["graphs"]["decoder"]["inputs"]["points"] == ["batch", "clicks", 3]
    assert manifest["expert"]["name"] == EXPERT and manifest["tolerance_max_abs"] == TOLERANCE
    shipped = json.loads((REPO / "sammoe_core" / "weights" / "foundation.json").read_text())
    assert manifest["foundation"]["sha256"] == shipped["sha256"]
    import onnx

    for name, graph in manifest["graphs"].items():  # the batch really is dynamic in the files
        model = onnx.load(str(exported / graph["file"]))
        first = model.graph.input[0].type.tensor_type.shape.dim[0]
        assert first.dim_param and not first.dim_value, name


def test_an_existing_output_is_kept_without_overwrite(tmp_path, sammoe_home):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep")
    result = run("export-onnx", str(tmp_path / "out"), ok=False)
    assert result.exit_code == 2 and "exists (pass --overwrite" in result.output
    assert (tmp_path / "out" / "mine.txt").read_text() == "keep"


def test_without_the_onnx_extra_the_error_says_what_to_install(tmp_path, monkeypatch, sammoe_home):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if not installed
    result = run("export-onnx", str(tmp_path / "out"), ok=False)
    assert result.output.strip() == "Error: ONNX export needs onnx and onnxscript: pip install 'sammoe[onnx]'"
    assert not (tmp_path / "out").exists()
