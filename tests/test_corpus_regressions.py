"""Regressions from the bad-input corpus (bench/bad_input_corpus.py): each case here once gave a
traceback, a hang, a leftover file, a lost input, or a success where a failure was due."""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from sammoe_core.cli import main
from sammoe_core.errors import SammoeError
from sammoe_core.segmentation.predictor_spec import PredictorSpec


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def one_line(result, *fragments, code=2):
    lines = result.output.strip().splitlines()
    assert result.exit_code == code and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def no_model(monkeypatch):
    def refuse(self):
        raise AssertionError("the model was built before the input was checked")

    monkeypatch.setattr(PredictorSpec, "build", refuse)


@pytest.fixture
def volume(tmp_path):
    path = tmp_path / "v.nii.gz"
    nib.Nifti1Image(np.zeros((12, 12, 10), np.float32), np.eye(4)).to_filename(str(path))
    return path


def test_a_symlink_loop_is_a_clean_error(tmp_path, no_model):
    (tmp_path / "a.nii.gz").symlink_to(tmp_path / "b.nii.gz")
    (tmp_path / "b.nii.gz").symlink_to(tmp_path / "a.nii.gz")
    result = run("segment", tmp_path / "a.nii.gz", "-o", tmp_path / "o.nii.gz", "--point", "1,1,1")
    assert result.exit_code == 2 and "Traceback" not in result.output and "internal error" not in result.output


@pytest.mark.parametrize(
    ("tag", "value"),
    [("ImageOrientationPatient", [1, 0, 0, 0, 1]), ("ImagePositionPatient", [0, 0]), ("PixelSpacing", [1.0])],
)
def test_malformed_dicom_geometry_names_the_tag(tmp_path, tag, value):
    import pydicom
    from segment_support import write_dicom_series

    from sammoe_core.io.volumes import VolumeError, read_volume

    write_dicom_series(tmp_path, np.zeros((8, 8, 4), np.float32), np.eye(4), order=range(4))
    first = sorted(tmp_path.glob("*.dcm"))[0]
    ds = pydicom.dcmread(first)
    setattr(ds, tag, value)
    ds.save_as(first)
    with pytest.raises(VolumeError, match=f"{first.name}: {tag} must hold"):
        read_volume(tmp_path)


def test_an_output_without_a_name_is_refused_before_the_model(volume, tmp_path, no_model):
    one_line(run("segment", volume, "-o", tmp_path / ".nii.gz", "--point", "1,1,1"), "needs a name")


def test_non_utf8_state_and_manifests_are_clean_errors(sammoe_home, tmp_path, make_expert):
    sammoe_home.mkdir(parents=True, exist_ok=True)
    (sammoe_home / "registry.json").write_bytes(b"\xff\xfe{bad")
    one_line(run("experts", "list"), "not UTF-8")
    (sammoe_home / "registry.json").unlink()
    expert = make_expert("liver")
    (expert.folder / "expert.json").write_bytes(b"\xff\xfe\x00{")
    one_line(run("add-expert", expert.folder), "not a JSON manifest")
    for name, data in (("big.csv", b"image\n" + b"x" * 200_000 + b"\n"), ("latin.csv", b"image\n\xe9t\xe9.nii.gz\n")):
        (tmp_path / name).write_bytes(data)
        one_line(run("segment", tmp_path / name, "-o", tmp_path / "out", "--point", "1,1,1", "--weights", "w"))


def test_a_fifo_or_deeply_nested_gate_manifest_is_a_broken_gate(tmp_path):
    from sammoe_core.moe.gatefile import read_gate_manifest

    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / "gate.json")
    with pytest.raises(SammoeError, match="not a regular file"):
        read_gate_manifest(fifo)  # before: hung forever
    deep = tmp_path / "deep"
    deep.mkdir()
    (deep / "gate.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(SammoeError, match="nested too deeply"):  # a SammoeError: warning and fallback, not exit 2
        read_gate_manifest(deep)


def test_failed_finetune_and_evaluate_leave_nothing(tmp_path, sammoe_home):
    from tests.data_support import write_sphere_dataset

    data = write_sphere_dataset(tmp_path / "d", n=1)
    (data / "images" / "case0.nii.gz").write_bytes(b"garbage")
    out = tmp_path / "expert"
    result = run("finetune", "--data", data, "--name", "x", "--classes", "sphere", "-o", out, "--steps", "1", "-q")
    assert result.exit_code == 2 and not (tmp_path / "expert.run").exists() and not out.exists()
    result = run("evaluate", "--data", data, "-q")
    assert result.exit_code == 2 and not (sammoe_home / "cache" / "volumes").exists()


def test_convert_never_replaces_its_source(tmp_path):
    from sammoe_core.model import Sam3D

    source = tmp_path / "w.pth"
    torch.save(Sam3D("sammoe-tiny").state_dict(), source)
    before = source.read_bytes()
    one_line(run("convert", source, source, "--config", "sammoe-tiny", "--overwrite"), "would replace the checkpoint")
    assert source.read_bytes() == before


def test_foundation_set_verifies_the_weights(tmp_path, sammoe_home):
    from safetensors.torch import save_file

    from sammoe_core.files.hashing import sha256_tensors
    from sammoe_core.model import Sam3D

    state = {k: v.clone() for k, v in Sam3D("sammoe-tiny").state_dict().items()}
    plain = tmp_path / "plain.safetensors"
    save_file(state, str(plain), metadata={"sammoe_config": "sammoe-tiny"})
    one_line(run("foundation", "set", plain), "no content digest")
    name = sorted(state)[0]
    state[name] = torch.full_like(state[name], float("nan"))
    bad = tmp_path / "nan.safetensors"
    save_file(state, str(bad), metadata={"sammoe_config": "sammoe-tiny", "tensors_sha256": sha256_tensors(state)})
    one_line(run("foundation", "set", bad), "holds NaN")


def test_a_batch_never_writes_over_its_inputs(tmp_path):
    from batch_support import write_cases

    from sammoe_core.model import Sam3D
    from sammoe_core.model.checkpoint import save_weights

    weights = tmp_path / "w.safetensors"
    save_weights(Sam3D("sammoe-tiny").state_dict(), weights, Sam3D("sammoe-tiny").config)
    scans = tmp_path / "scans"
    write_cases(scans, 1, seed=1)
    before = (scans / "case0.nii.gz").read_bytes()
    result = run("segment", scans, "-o", scans, "--weights", weights, "--device", "cpu", "-q")
    one_line(result, "would replace the input")
    assert (scans / "case0.nii.gz").read_bytes() == before


def test_small_state_and_header_checks(tmp_path, volume, make_expert):
    home = tmp_path / "home-file"
    home.write_text("x")
    one_line(run("cache", "clear", env={"SAMMOE_HOME": str(home)}), "is a file, not a folder")
    huge = tmp_path / "huge.nii.gz"
    nib.Nifti1Image(np.zeros((6, 6, 6), np.float32), np.diag([1e30, 1, 1, 1])).to_filename(str(huge))
    one_line(run("segment", huge, "-o", tmp_path / "o.nii.gz", "--point", "1,1,1"), "voxel sizes")
    with pytest.raises(SammoeError, match="'foundation' is reserved"):
        make_expert("foundation")
    fifo = tmp_path / "w.safetensors"
    os.mkfifo(fifo)  # before: "no such file"
    one_line(
        run("segment", volume, "-o", tmp_path / "o.nii.gz", "--point", "1,1,1", "--weights", fifo), "not a regular file"
    )


def test_a_point_outside_the_volume_is_refused_before_the_model(volume, tmp_path, no_model):
    one_line(run("segment", volume, "-o", tmp_path / "o.nii.gz", "--point", "50,5,5"), "outside the volume")


def test_a_non_utf8_gate_manifest_and_a_non_object_hash_cache_are_handled(tmp_path):
    """Before: AttributeError from both (found by typing the package)."""
    from sammoe_core.files.hashing import cached_sha256, sha256_file
    from sammoe_core.moe.gatefile import read_gate_manifest

    (tmp_path / "gate.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(SammoeError, match="unreadable gate manifest"):
        read_gate_manifest(tmp_path)
    cache = tmp_path / "hashes.json"
    cache.write_text("[]")
    assert cached_sha256(tmp_path / "gate.json", cache) == sha256_file(tmp_path / "gate.json")
