"""``--split`` (one mask per target) and ``--statistics``, for one volume and for batches.

Masks and statistics are checked against the label map written beside them and against numpy
computed here on the input's own voxels; names are user data (sanitised, kept inside the folder,
collisions refused); nothing is overwritten without ``overwrite`` and a failure leaves nothing.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from batch_support import write_cases
from click.testing import CliRunner
from segment_support import EllipsoidPredictor, make_affine, rotation

from sammoe_core.cli import main
from sammoe_core.distributed import LocalEngine, SegmentSettings, segment_batch, segment_folder
from sammoe_core.io.outputs import OutputError, output_paths, planned_outputs, write_result
from sammoe_core.io.statistics import structure_statistics
from sammoe_core.io.structure_files import StructureNameError, file_stem, structure_paths
from sammoe_core.io.volumes.volume import make_volume
from sammoe_core.segmentation.pipeline import segment
from sammoe_core.segmentation.prompts import Target
from sammoe_core.testing import make_test_foundation


def _image(seed: int) -> nib.Nifti1Image:
    """A 40 x 36 x 24 oblique volume of random intensities (sform code 2)."""
    rng = np.random.default_rng(seed)
    affine = make_affine(rotation(12.0, -7.0), (1.3, 1.1, 2.0), (20, 18, 12), (3.0, 8.0, -15.0))
    image = nib.Nifti1Image(rng.normal(50, 30, (40, 36, 24)).astype(np.int16), affine)
    image.set_sform(affine, code=2)
    return image


def _result(seed: int, names=("liver", "left kidney"), radii=(7.0, 6.0, 8.0)):
    targets = [
        Target(name=names[0], label=7, points=[[14, 14, 10]]),
        Target(name=names[1], label=300, points=[[28, 22, 14]]),
    ]
    return segment(_image(seed), targets, EllipsoidPredictor(radii, 64))


def test_split_writes_each_target_as_a_mask_on_the_input_grid(tmp_path, fresh_seed):
    result = _result(fresh_seed)
    paths = write_result(result, tmp_path / "case.nii.gz", split=True)
    assert sorted(p.name for p in (tmp_path / "case").iterdir()) == ["left_kidney.nii.gz", "liver.nii.gz"]
    labels = nib.load(tmp_path / "case.nii.gz")
    label_data = np.asarray(labels.dataobj)
    for name, label in (("liver", 7), ("left kidney", 300)):
        mask = nib.load(paths.structures[name])
        data = np.asarray(mask.dataobj)
        assert mask.get_data_dtype() == np.uint8 and set(np.unique(data)) == {0, 1}
        assert np.array_equal(data == 1, label_data == label)
        assert np.array_equal(mask.affine, labels.affine) and int(mask.header["sform_code"]) == 2
    sidecar = json.loads((tmp_path / "case.json").read_text())
    assert sidecar["files"]["structures"] == {"liver": "case/liver.nii.gz", "left kidney": "case/left_kidney.nii.gz"}

    # nothing is replaced without overwrite: not the masks, not the folder's other files
    (tmp_path / "case" / "notes.txt").write_text("mine")
    before = (tmp_path / "case" / "liver.nii.gz").read_bytes()
    smaller = _result(fresh_seed, radii=4.0)
    with pytest.raises(OutputError, match="output exists"):
        write_result(smaller, tmp_path / "case.nii.gz", split=True)
    assert (tmp_path / "case" / "liver.nii.gz").read_bytes() == before
    write_result(smaller, tmp_path / "case.nii.gz", split=True, overwrite=True)
    replaced = np.asarray(nib.load(tmp_path / "case" / "liver.nii.gz").dataobj)
    assert np.array_equal(replaced == 1, smaller.label_map == 7) and replaced.sum() < (label_data == 7).sum()
    assert (tmp_path / "case" / "notes.txt").read_text() == "mine"


def test_split_and_statistics_need_no_dicom_packages(tmp_path, fresh_seed, monkeypatch):
    import sys

    result = _result(fresh_seed)
    for package in ("pydicom", "highdicom"):  # the core install has neither
        monkeypatch.setitem(sys.modules, package, None)
    paths = write_result(result, tmp_path / "seg.nii.gz", split=True, statistics=True)
    assert paths.statistics.is_file() and len(paths.structures) == 2


def test_target_names_are_data_for_file_names(tmp_path):
    assert file_stem("left kidney") == "left_kidney"
    assert file_stem("../../etc/passwd") == "_.._etc_passwd"
    assert file_stem("C:\\temp\\x") == "C__temp_x"
    assert file_stem("...") == "target"
    assert file_stem("CON") == "CON_" and file_stem("nul.x") == "nul.x_" and file_stem("console") == "console"
    hostile = ["../../escape", "/abs/path", "a\x00b", "ñame", "x" * 300]
    for name, path in structure_paths(tmp_path / "out", hostile).items():
        assert path.parent == tmp_path / "out" and path.name.endswith(".nii.gz"), name
    with pytest.raises(StructureNameError, match=r"targets 'left kidney' and 'left_kidney' would both be written"):
        structure_paths(tmp_path, ["left kidney", "left_kidney"])
    with pytest.raises(StructureNameError, match="'Liver' and 'liver'"):  # case-insensitive file systems
        structure_paths(tmp_path, ["Liver", "liver"])
    with pytest.raises(StructureNameError):
        write_result(_result(5, names=("a b", "a_b")), tmp_path / "seg.nii.gz", split=True)
    assert list(tmp_path.iterdir()) == []


def test_split_folder_problems_are_found_before_any_work(tmp_path, fresh_seed):
    (tmp_path / "seg").write_text("a file where the folder goes")
    with pytest.raises(OutputError, match="is a file; the per-target masks need a folder"):
        write_result(_result(fresh_seed), tmp_path / "seg.nii.gz", split=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg"]


def test_a_failure_leaves_no_mask_and_no_folder(tmp_path, monkeypatch, fresh_seed):
    import sammoe_core.io.preview

    def broken(result, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sammoe_core.io.preview, "render_preview", broken)
    with pytest.raises(OutputError, match="No space left"):
        write_result(_result(fresh_seed), tmp_path / "seg.nii.gz", preview=True, split=True, statistics=True)
    assert list(tmp_path.iterdir()) == []


def test_statistics_match_numpy_on_the_input_voxels(tmp_path, fresh_seed):
    image = _image(fresh_seed)
    result = _result(fresh_seed)
    paths = write_result(result, tmp_path / "seg.nii.gz", statistics=True)
    assert paths.statistics == tmp_path / "seg.statistics.json"
    written = json.loads(paths.statistics.read_text())
    assert written == json.loads((tmp_path / "seg.json").read_text())["statistics"]
    assert list(written) == ["liver", "left kidney"]
    intensities = np.asarray(image.dataobj).astype(np.float64)
    labels = np.asarray(nib.load(tmp_path / "seg.nii.gz").dataobj)
    voxel_mm3 = 1.3 * 1.1 * 2.0
    for name, label in (("liver", 7), ("left kidney", 300)):
        stats, mask = written[name], labels == label
        values = np.sort(intensities[mask])
        count = values.size
        assert count > 100 and stats["label"] == label and stats["voxel_count"] == count
        assert stats["volume"] == pytest.approx(count * voxel_mm3, abs=1e-3)  # mm³, as TotalSegmentator
        assert stats["volume_ml"] == pytest.approx(count * voxel_mm3 / 1000, abs=1e-4)
        assert stats["intensity"] == stats["intensity_mean"] == pytest.approx(values.sum() / count, abs=1e-3)
        assert stats["intensity_std"] == pytest.approx(np.sqrt(((values - values.mean()) ** 2).mean()), abs=1e-3)
        middle = (values[(count - 1) // 2] + values[count // 2]) / 2
        assert stats["intensity_median"] == pytest.approx(middle, abs=1e-3)
        for key, q in (("intensity_p05", 0.05), ("intensity_p95", 0.95)):  # numpy's linear interpolation
            position = q * (count - 1)
            low = int(np.floor(position))
            expected = values[low] + (position - low) * (values[min(low + 1, count - 1)] - values[low])
            assert stats[key] == pytest.approx(expected, abs=1e-3), key
        where = np.argwhere(mask)
        assert stats["bbox_voxels"] == {"min": where.min(0).tolist(), "max": where.max(0).tolist()}
        low, high = where.min(0), where.max(0)
        corners = [[x, y, z, 1.0] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])]
        mm = (image.affine @ np.array(corners).T).T[:, :3]
        assert np.allclose(stats["bbox_mm"]["min"], mm.min(0), atol=1e-3)
        assert np.allclose(stats["bbox_mm"]["max"], mm.max(0), atol=1e-3)


def test_statistics_of_an_empty_structure():
    volume = make_volume(np.ones((4, 5, 6), np.float32), np.diag([2.0, 2.0, 2.0, 1.0]))
    stats = structure_statistics(np.zeros((4, 5, 6), bool), volume, 9)
    assert stats["volume"] == 0.0 and stats["intensity"] == 0.0 and stats["voxel_count"] == 0  # as TotalSegmentator
    assert stats["intensity_median"] is None and stats["bbox_voxels"] is None and stats["bbox_mm"] is None
    one = np.zeros((4, 5, 6), bool)
    one[1, 2, 3] = True
    stats = structure_statistics(one, volume, 9)
    assert stats["volume_ml"] == 0.008 and stats["intensity_std"] == 0.0
    assert stats["bbox_voxels"] == {"min": [1, 2, 3], "max": [1, 2, 3]} and stats["bbox_mm"]["min"] == [2.0, 4.0, 6.0]


def test_repeated_names_cannot_be_listed_by_name(tmp_path, fresh_seed):
    with pytest.raises(OutputError, match=r"\['same'\] repeat"):
        write_result(_result(fresh_seed, names=("same", "same")), tmp_path / "seg.nii.gz", statistics=True)
    with pytest.raises(OutputError, match=r"\['same'\] repeat"):  # as the CLI checks, before the model loads
        planned_outputs(tmp_path / "seg.nii.gz", tmp_path / "in.nii.gz", ["same", "x", "same"], statistics=True)
    assert list(tmp_path.iterdir()) == []
    planned_outputs(tmp_path / "seg.nii.gz", tmp_path / "in.nii.gz", ["same", "same"])  # no statistics: fine


def test_output_names_with_statistics_and_split(tmp_path):
    paths = output_paths(tmp_path / "ct.dcm", probabilities=True, statistics=True, split=["liver"])
    assert [p.name for p in paths.all()] == [
        "ct.dcm",
        "ct.json",
        "ct.probabilities.nii.gz",
        "ct.statistics.json",
        "liver.nii.gz",
    ]
    assert paths.structures_folder == tmp_path / "ct" and paths.is_dicom_seg
    assert set(paths.to_dict()) == {"label_map", "sidecar", "probabilities", "statistics", "structures"}


def test_batches_write_statistics_and_masks_per_case(tmp_path, fresh_seed):
    write_cases(tmp_path / "cases", 2, fresh_seed)
    predictor = EllipsoidPredictor(5.0, 64)
    report = segment_folder(tmp_path / "cases", tmp_path / "out", predictor, statistics=True, split=True, quiet=True)
    assert report.counts == {"done": 2, "failed": 0, "skipped": 0}
    for case in ("case0", "case1"):
        labels = np.asarray(nib.load(tmp_path / "out" / f"{case}.nii.gz").dataobj)
        mask = np.asarray(nib.load(tmp_path / "out" / case / "core.nii.gz").dataobj)
        assert mask.any() and np.array_equal(mask == 1, labels == 3)
        stats = json.loads((tmp_path / "out" / f"{case}.statistics.json").read_text())
        assert stats["core"]["voxel_count"] == int((labels == 3).sum())
    assert report.data["settings"]["statistics"] is True and report.data["settings"]["split"] is True

    # the same outputs without the new options count as other settings; the digest of a plain
    # run is the one earlier versions recorded (the options, off, are left out of it)
    plain = SegmentSettings()
    assert SegmentSettings(statistics=True).digest({}) != plain.digest({}) != SegmentSettings(split=True).digest({})
    again = segment_batch(tmp_path / "cases", tmp_path / "out", LocalEngine(predictor), plain, quiet=True)
    assert again.counts["skipped"] == 2
    assert all("made with other settings" in c["reason"] for c in again.cases)


def test_plain_settings_digest_is_unchanged():
    import hashlib

    settings = SegmentSettings()
    legacy = {
        "modality": "auto",
        "clicks": "newest",
        "preview": False,
        "probabilities": False,
        "max_crops": None,
        "box_as_click": False,
        "max_voxels": None,
        "prompts": None,
        "policy": [None, None],
    }
    expected = hashlib.sha256(json.dumps(legacy, sort_keys=True, default=str).encode()).hexdigest()
    assert settings.digest({}) == expected


def test_cli_split_statistics_and_dicom_seg(tmp_path, fresh_seed):
    from segment_support import write_dicom_series

    weights = make_test_foundation(tmp_path / "tiny.safetensors").weights
    series = tmp_path / "series"
    series.mkdir()
    affine = make_affine(np.eye(3), (1.5, 1.5, 2.5), (12, 12, 5))
    rng = np.random.default_rng(fresh_seed)
    write_dicom_series(series, rng.normal(40, 30, (24, 24, 11)).astype(np.float32), affine, order=range(11))
    import pydicom
    from pydicom.uid import generate_uid

    frame_of_reference = generate_uid()
    for path in series.iterdir():
        ds = pydicom.dcmread(path)
        ds.FrameOfReferenceUID = frame_of_reference
        ds.save_as(path, enforce_file_format=True)
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"targets": [{"name": "spleen", "points": [[12, 12, 5]]}]}))
    out = tmp_path / "out" / "seg.dcm"
    out.parent.mkdir()
    args = ["segment", str(series), "-o", str(out), "--prompts", str(prompts), "--weights", str(weights)]
    done = CliRunner().invoke(main, [*args, "--split", "--statistics"])
    assert done.exit_code == 0, done.output
    assert sorted(p.relative_to(out.parent).as_posix() for p in out.parent.rglob("*")) == [
        "seg",
        "seg.dcm",
        "seg.json",
        "seg.statistics.json",
        "seg/spleen.nii.gz",
    ]
    assert "seg.statistics.json" in done.output
    mask = nib.load(out.parent / "seg" / "spleen.nii.gz")
    assert mask.shape == (24, 24, 11) and np.allclose(mask.affine, affine, atol=1e-4)
    sidecar = json.loads((out.parent / "seg.json").read_text())
    assert sidecar["statistics"]["spleen"]["voxel_count"] == int(np.asarray(mask.dataobj).sum())
    assert pydicom.dcmread(out).Modality == "SEG"
    again = CliRunner().invoke(main, [*args, "--split"])  # exists: refused, one line
    assert again.exit_code == 2 and "output exists (pass --overwrite" in again.output

    # a batch through the CLI: the per-case files for every case
    cases = tmp_path / "cases"
    write_cases(cases, 2, fresh_seed)
    done = CliRunner().invoke(
        main,
        ["segment", str(cases), "-o", str(tmp_path / "batch"), "--weights", str(weights), "--split", "--statistics"],
    )
    assert done.exit_code == 0, done.output
    for case in ("case0", "case1"):
        assert (tmp_path / "batch" / case / "core.nii.gz").is_file()
        assert "core" in json.loads((tmp_path / "batch" / f"{case}.statistics.json").read_text())
