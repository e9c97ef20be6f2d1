"""write_result: all files or none, names derived from the label map, label types by label value."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from segment_support import EllipsoidPredictor, make_affine

from sammoe_core.io.outputs import OutputError, output_paths, write_result
from sammoe_core.segmentation.pipeline import segment
from sammoe_core.segmentation.prompts import Target


def _result(label: int = 1, probabilities: bool = False):
    affine = make_affine(np.diag([-1.0, 1, 1]), (1.5, 1.5, 2.0), (15, 15, 10))
    image = nib.Nifti1Image(np.full((30, 30, 20), 80, np.int16), affine)
    image.set_sform(affine, code=2)
    return segment(
        image, Target(label=label, points=[[15, 15, 10]]), EllipsoidPredictor(9.0, 64), probabilities=probabilities
    )


def test_output_names_follow_the_label_map(tmp_path):
    paths = output_paths(tmp_path / "case.01.nii.gz", preview=True, probabilities=True)
    assert [p.name for p in paths.all()] == [
        "case.01.nii.gz",
        "case.01.json",
        "case.01.probabilities.nii.gz",
        "case.01.png",
    ]
    assert output_paths(tmp_path / "x.nii").probabilities is None
    with pytest.raises(OutputError, match="must be a .nii.gz or .nii"):
        output_paths(tmp_path / "x.mha")
    with pytest.raises(OutputError, match="preview must be a .png"):
        output_paths(tmp_path / "x.nii", preview=tmp_path / "x.jpg")


def test_a_failure_while_writing_leaves_no_file(tmp_path, monkeypatch):
    import sammoe_core.io.preview

    def broken(result, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sammoe_core.io.preview, "render_preview", broken)
    with pytest.raises(OutputError, match="No space left"):
        write_result(_result(probabilities=True), tmp_path / "seg.nii.gz", preview=True, probabilities=True)
    assert list(tmp_path.iterdir()) == []


def test_label_type_follows_the_largest_label_and_sidecar_lists_files(tmp_path):
    for label, dtype in ((255, np.uint8), (256, np.uint16)):
        out = tmp_path / f"seg{label}.nii.gz"
        write_result(_result(label), out)
        written = nib.load(out)
        assert written.get_data_dtype() == dtype
        assert int(written.header["sform_code"]) == 2
        assert set(np.unique(np.asarray(written.dataobj))) == {0, label}
        sidecar = json.loads(out.with_name(f"seg{label}.json").read_text())
        assert sidecar["files"] == {"label_map": out.name, "sidecar": f"seg{label}.json"}


def test_probabilities_need_a_result_that_has_them(tmp_path):
    with pytest.raises(OutputError, match="holds no probabilities"):
        write_result(_result(), tmp_path / "seg.nii.gz", probabilities=True)
    assert list(tmp_path.iterdir()) == []
