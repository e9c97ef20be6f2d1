"""Cheap checks first, and bounds on every input: each case here once hung, exhausted memory,
exited 0 with garbage, or was refused only after the model had loaded."""

from __future__ import annotations

import gzip
import json
import os
import struct

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner

from sammoe_core.cli import main
from sammoe_core.io.limits import MAX_CLICKS_PER_TARGET, MAX_TARGETS
from sammoe_core.segmentation.predictor_spec import PredictorSpec
from sammoe_core.segmentation.prompts import PromptError, load_prompts, make_targets


@pytest.fixture
def no_model(monkeypatch):
    """Building a model fails the test: the refusals below must come before it."""

    def refuse(self):
        raise AssertionError("the model was built before the input was checked")

    monkeypatch.setattr(PredictorSpec, "build", refuse)


def _segment(*args):
    return CliRunner().invoke(main, ["segment", *map(str, args)])


def _one_line_exit_2(result, *fragments):
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _small_volume(tmp_path, values=None):
    data = np.zeros((12, 12, 10), np.float32) if values is None else values
    path = tmp_path / "v.nii.gz"
    nib.Nifti1Image(data, np.eye(4)).to_filename(str(path))
    return path


def test_a_fifo_is_refused_at_once(tmp_path, no_model):
    fifo = tmp_path / "pipe.nii"
    os.mkfifo(fifo)
    _one_line_exit_2(_segment(fifo, "-o", tmp_path / "o.nii.gz", "--point", "1,1,1"), "not a regular file")


def test_a_small_gzip_declaring_a_huge_volume_is_refused_from_its_header(tmp_path, no_model):
    """Before: a 1 MB gzip declaring 1024^3 voxels used 7.7 GB of memory."""
    header = nib.Nifti1Header()
    header.set_data_shape((1024, 1024, 1024))
    header.set_data_dtype(np.int16)
    path = tmp_path / "bomb.nii.gz"
    with gzip.open(path, "wb") as f:
        f.write(header.binaryblock + b"\0" * 4 + bytes(1 << 20))
    result = _segment(path, "-o", tmp_path / "o.nii.gz", "--point", "1,1,1")
    _one_line_exit_2(result, "1,073,741,824 voxels", "exceed the limit", "--max-voxels")
    ok = CliRunner().invoke(
        main,
        ["segment", str(path), "-o", str(tmp_path / "o.nii.gz"), "--point", "1,1,1"],
        env={"SAMMOE_MAX_VOXELS": "2e9"},
    )
    _one_line_exit_2(ok, "truncated")  # past the budget, the file is still checked in full


def test_a_negative_dimension_is_named_as_such(tmp_path, no_model):
    header = nib.Nifti1Header()
    header.set_data_shape((4, 4, 4))
    block = bytearray(header.binaryblock)
    struct.pack_into("<h", block, 42, -4)  # dim[1]
    path = tmp_path / "negative.nii"
    path.write_bytes(bytes(block) + b"\0" * (4 + 128))
    _one_line_exit_2(_segment(path, "-o", tmp_path / "o.nii.gz", "--point", "1,1,1"), "negative dimension")


@pytest.mark.parametrize("value", [np.float32(3e38), np.float32(np.nan)])
def test_absurd_or_non_finite_intensities_are_refused(tmp_path, no_model, value):
    data = np.zeros((12, 12, 10), np.float32)
    data[3, 3, 3] = value
    result = _segment(_small_volume(tmp_path, data), "-o", tmp_path / "o.nii.gz", "--point", "1,1,1")
    _one_line_exit_2(result, "v.nii.gz")
    assert not (tmp_path / "o.nii.gz").exists()


@pytest.mark.parametrize("option", ["--point", "--point-mm", "--negative-point"])
def test_nan_in_a_point_is_refused(tmp_path, option):
    """Before: exit 0, an all-zero map and a sidecar holding bare NaN (invalid JSON)."""
    args = [_small_volume(tmp_path), "-o", tmp_path / "o.nii.gz", option, "nan,2,2"]
    if option == "--negative-point":
        args += ["--point", "1,1,1"]
    result = _segment(*args)
    assert result.exit_code == 2 and "finite" in result.output, result.output
    assert not (tmp_path / "o.nii.gz").exists()


def test_nan_and_infinity_in_prompts_files_and_boxes_are_refused(tmp_path):
    for bad in ([float("nan"), 1, 1], [1e400, 1, 1]):
        path = tmp_path / "p.json"
        path.write_text(json.dumps({"targets": [{"name": "x", "points": [bad]}]}))  # json writes NaN / Infinity
        with pytest.raises(PromptError, match="finite"):
            load_prompts(path)
    with pytest.raises(PromptError, match="finite"):
        make_targets([{"name": "x", "box": [0, 0, 0, float("inf"), 4, 4]}])


def test_prompts_have_bounds(tmp_path):
    many = [{"name": f"t{i}", "label": i + 1, "points": [[1, 1, 1]]} for i in range(MAX_TARGETS + 1)]
    with pytest.raises(PromptError, match=f"at most {MAX_TARGETS}"):
        make_targets(many)
    clicks = [{"name": "t", "points": [[1, 1, 1]] * (MAX_CLICKS_PER_TARGET + 1)}]
    with pytest.raises(PromptError, match=f"at most {MAX_CLICKS_PER_TARGET}"):
        make_targets(clicks)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(PromptError, match="nested too deeply"):
        load_prompts(deep)
    fifo = tmp_path / "prompts.json"
    os.mkfifo(fifo)
    with pytest.raises(Exception, match="not a regular file"):
        load_prompts(fifo)


def test_an_output_never_replaces_its_input(tmp_path, no_model):
    """Before: `-o` equal to the input with --overwrite replaced the CT with the label map."""
    volume = _small_volume(tmp_path)
    before = volume.read_bytes()
    for out in (volume, tmp_path / "." / "v.nii.gz"):
        result = _segment(volume, "-o", out, "--point", "1,1,1", "--overwrite")
        _one_line_exit_2(result, "would replace the input")
    assert volume.read_bytes() == before


def test_max_voxels_lowers_or_raises_the_budget(tmp_path, no_model):
    volume = _small_volume(tmp_path)  # 1,440 voxels
    result = _segment(volume, "-o", tmp_path / "o.nii.gz", "--point", "1,1,1", "--max-voxels", "1000")
    _one_line_exit_2(result, "1,440 voxels", "exceed the limit of 1,000")
