"""Crops encoded several at once (the CUDA default) segment as one crop at a time does, and the
encoder runtime says how it ran: eager on the CPU, and eager with the reason where a CUDA graph
capture fails."""

from __future__ import annotations

import json
import warnings

import nibabel as nib
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from segment_support import EllipsoidPredictor, make_affine

from sammoe_core.cli import main
from sammoe_core.model import Sam3D
from sammoe_core.segmentation.encoder_runtime import CudaGraphWarning, EncoderRunner, choose_crop_batch
from sammoe_core.segmentation.pipeline import segment
from sammoe_core.segmentation.predictor import FoundationPredictor
from sammoe_core.segmentation.prompts import Target


class _BatchingEllipsoid(EllipsoidPredictor):
    """The ellipsoid stand-in with ``encode_batch``: records every encoder call's batch size."""

    def __init__(self, radius_mm: float, crop_batch: int):
        super().__init__(radius_mm, crop_size=64)
        self.crop_batch = crop_batch
        self.calls: list[int] = []

    def encode(self, crop: torch.Tensor) -> int:
        self.calls.append(1)
        return super().encode(crop)

    def encode_batch(self, crops: torch.Tensor) -> list[int]:
        self.calls.append(crops.shape[0])
        return [super(_BatchingEllipsoid, self).encode(c[None]) for c in crops]


def _three_targets():
    """A large sphere that needs edge extension, and two small targets elsewhere."""
    spacing, n = 3.0, 80
    affine = make_affine(np.eye(3), (spacing,) * 3, ((n - 1) / 2,) * 3)
    image = np.random.default_rng(7).uniform(50, 150, (n, n, n)).astype(np.float32)
    targets = [
        Target(name="big", points_mm=[[0.0, 0.0, 0.0]]),
        Target(name="left", label=2, points_mm=[[-90.0, 60.0, 0.0]]),
        Target(name="right", label=3, points_mm=[[90.0, -60.0, 30.0]]),
    ]
    return image, affine, targets


def _record(target) -> dict:
    """A target's record without timings, and without the stand-in's own encode-order numbers."""
    record = {k: v for k, v in target.to_dict().items() if k != "timings_s"}
    for crop in record["crops"]:
        crop["predictor_info"] = [{k: v for k, v in i.items() if k != "crop"} for i in crop["predictor_info"]]
    return record


def test_batched_crops_segment_exactly_as_one_at_a_time():
    image, affine, targets = _three_targets()
    runs = {}
    for batch in (1, 4):
        predictor = _BatchingEllipsoid(70.0, batch)
        result = segment(image, targets, predictor, affine=affine)
        runs[batch] = (predictor, result)
    (one, single), (four, batched) = runs[1], runs[4]
    assert np.array_equal(single.label_map, batched.label_map)
    records = [[_record(t) for t in r.targets] for r in (single, batched)]
    assert records[0] == records[1]
    crops_run = sum(len(t.crops) for t in single.targets)
    assert crops_run > 6  # edge extension ran: batches had something to gather
    # every crop encoded was used, once: nothing encoded ahead is wasted
    assert sum(one.calls) == sum(four.calls) == crops_run == len(four.crops)
    assert set(one.calls) == {1} and max(four.calls) == 4 and len(four.calls) < len(one.calls)
    # each decode saw the same crop, sampled the same way
    seen = [[p.crops[d["crop"]] for d in p.decodes] for p in (one, four)]
    assert len(seen[0]) == len(seen[1])
    assert all(torch.equal(a, b) for a, b in zip(*seen, strict=True))


def test_crop_budget_bounds_what_is_encoded_ahead():
    """With max_crops 2 the big target's queued extensions beyond the bound are never encoded."""
    image, affine, targets = _three_targets()
    predictor = _BatchingEllipsoid(70.0, 8)
    result = segment(image, targets, predictor, affine=affine, max_crops=2)
    assert result.targets[0].crops_truncated
    assert len(predictor.crops) == sum(len(t.crops) for t in result.targets)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return Sam3D("sammoe-tiny").eval()


def test_the_network_encodes_a_batch_as_it_encodes_each_crop(tiny, fresh_seed):
    predictor = FoundationPredictor(tiny)
    crops = torch.randn(3, 1, 64, 64, 64, generator=torch.Generator().manual_seed(fresh_seed))
    batched = predictor.encode_batch(crops)
    assert len(batched) == 3
    for i, state in enumerate(batched):
        alone = predictor.encode(crops[i : i + 1])
        assert state.shape == alone.shape and torch.allclose(state, alone, atol=1e-5, rtol=1e-5)


def test_batched_network_segmentation_matches_one_crop_at_a_time(tiny):
    image, affine, targets = _three_targets()
    maps = {}
    for batch in (1, 3):
        predictor = FoundationPredictor(tiny)
        predictor.crop_batch = batch
        maps[batch] = segment(image, targets, predictor, affine=affine, max_crops=4).label_map
    assert (maps[1] == maps[3]).mean() > 0.999


def test_crop_batch_and_runtime_are_recorded_and_checked(tmp_path, tiny):
    from sammoe_core.model.checkpoint import save_weights

    weights = tmp_path / "tiny.safetensors"
    save_weights(tiny.state_dict(), weights, tiny.config)
    image, affine, _ = _three_targets()
    source = tmp_path / "v.nii.gz"
    nib.Nifti1Image(image, affine).to_filename(str(source))
    runner = CliRunner()
    args = ["segment", str(source), "--point", "40,40,40", "--weights", str(weights), "--device", "cpu"]
    ok = runner.invoke(main, [*args, "-o", str(tmp_path / "a.nii.gz"), "--crop-batch", "2"])
    assert ok.exit_code == 0, ok.output
    model = json.loads((tmp_path / "a.json").read_text())["model"]
    assert model["crop_batch"] == 2
    assert model["encoder_runtime"] == "eager" and "only on CUDA" in model["encoder_runtime_reason"]
    default = runner.invoke(main, [*args, "-o", str(tmp_path / "b.nii.gz")])
    assert json.loads((tmp_path / "b.json").read_text())["model"]["crop_batch"] == 1, default.output
    bad = runner.invoke(main, [*args, "-o", str(tmp_path / "c.nii.gz"), "--crop-batch", "0"])
    assert bad.exit_code == 2 and "--crop-batch" in bad.output and not (tmp_path / "c.nii.gz").exists()


def test_crop_batch_defaults_by_device():
    assert choose_crop_batch(torch.device("cpu")) == 1
    assert choose_crop_batch(torch.device("cuda")) == 8
    assert choose_crop_batch(torch.device("cpu"), 5) == 5


def test_a_failed_graph_capture_runs_eagerly_and_says_why(tiny, fresh_seed):
    """Forced into graph mode where no CUDA graph can be captured (this CPU), the runner runs a
    batch size's first use eagerly, tries the capture at its second, warns once, records the
    reason, and returns the eager embedding."""
    crops = torch.randn(2, 1, 64, 64, 64, generator=torch.Generator().manual_seed(fresh_seed))
    eager = EncoderRunner(tiny, "fp32", cuda_graphs=True)
    assert eager.mode == "eager" and "only on CUDA" in eager.reason
    forced = EncoderRunner(tiny, "fp32", cuda_graphs=True)
    forced.mode = "cuda-graph"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the first batch of a size runs eagerly: no capture tried
        first = forced(crops)
    assert forced.mode == "cuda-graph" and torch.equal(first, eager(crops))
    assert torch.equal(forced(crops[:1]), eager(crops[:1]))  # another size: also eager, first time
    with pytest.warns(CudaGraphWarning, match="capture failed"):
        out = forced(crops)  # the second batch of a size is captured: here that fails
    assert forced.mode == "eager" and forced.reason.startswith("CUDA graph capture failed")
    assert torch.equal(out, eager(crops))
