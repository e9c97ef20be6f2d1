"""DICOM SEG output: coded segments, frames that land on the right source slices, clear refusals.

Each SEG is read back with highdicom and pydicom and checked against the NIfTI label map of the
same segmentation, slice by slice: a frame's referenced source image is placed in the NIfTI grid
through its ImagePositionPatient and the NIfTI affine (not through sammoe's reader), and its
pixels must equal that slice of the label map. The synthetic series is written here with pydicom
(files shuffled, slices stored against the name order); the real series under
``../shared/data/real-ct-dicom`` (or ``$SAMMOE_REAL_CT_DICOM``) is used where it is present.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from click.testing import CliRunner
from segment_support import EllipsoidPredictor, make_affine, rotation, write_dicom_series

from sammoe_core.cli import main
from sammoe_core.io.dicom_seg import DicomSegError
from sammoe_core.io.outputs import write_result
from sammoe_core.io.structure_codes import ALIASES, STRUCTURES, structure_code
from sammoe_core.io.volumes import read_volume
from sammoe_core.segmentation.pipeline import segment
from sammoe_core.segmentation.prompts import Target

REPO = Path(__file__).resolve().parent.parent
REAL_CT = Path(os.environ.get("SAMMOE_REAL_CT_DICOM", REPO.parent / "shared" / "data" / "real-ct-dicom"))
# the class names of the shipped default (the phantom labels) and of the real CT's evaluation set
DEFAULT_NAMES = [
    "body", "lung_left", "lung_right", "liver", "spleen", "kidney_left", "kidney_right", "bladder", "aorta",
    "spinal_cord", "esophagus", "hip_left", "hip_right", "stomach", "pancreas", "gallbladder", "vertebrae", "ivc",
    "heart", "trachea", "autochthon", "iliopsoas", "ribs", "pelvis",
]  # fmt: skip
NO_CODE_IN_PYDICOM = ["bowel"]  # pydicom's CID 7151 has small and large intestine, no code for both


def test_codes_come_from_pydicoms_tables_and_cover_the_default_classes():
    from pydicom.sr.codedict import codes

    for category, kind in STRUCTURES.values():
        assert getattr(codes.cid7150, category).scheme_designator == "SCT"
        assert getattr(codes.cid7151, kind).scheme_designator == "SCT"
    assert set(ALIASES.values()) <= set(STRUCTURES)
    for name in DEFAULT_NAMES:
        assert structure_code(name).known, name
    liver = structure_code("Liver")
    assert (liver.category, liver.type, liver.laterality) == (
        codes.cid7150.AnatomicalStructure,
        codes.SCT.Liver,
        None,
    )
    assert liver.type.value == "10200004"  # SNOMED CT "Liver", as DICOM PS3.16 lists it
    left = structure_code("kidney_left")
    assert left.type == codes.SCT.Kidney and left.laterality == codes.cid244.Left
    assert structure_code("Right Lung").laterality == codes.cid244.Right
    assert structure_code("inferior vena cava").type == codes.SCT.InferiorVenaCava
    assert structure_code("vertebrae_L1").type == codes.cid7151.L1Vertebra
    for unknown in (*NO_CODE_IN_PYDICOM, "tumour 3", "kidney_up"):
        code = structure_code(unknown)
        assert not code.known and code.type == codes.cid7151.Tissue and code.category == codes.cid7150.Tissue


def _series(folder: Path, seed: int, complete: bool = True) -> Path:
    """A 32 x 28 x 13 CT series, oblique, slices stored along -z, files written in a random order.
    ``complete``: with the patient and study attributes scanners write; else only the frame of
    reference beside the geometry (no study UID, no patient)."""
    import pydicom
    from pydicom.uid import generate_uid

    rng = np.random.default_rng(seed)
    folder.mkdir()
    directions = rotation(17.0, 8.0) @ np.diag([1.0, 1.0, -1.0])
    affine = make_affine(directions, (1.4, 1.2, 2.5), (16, 14, 6), (5.0, -20.0, 40.0))
    hounsfield = rng.normal(40, 20, (32, 28, 13)).astype(np.float32)
    write_dicom_series(folder, hounsfield, affine, order=rng.permutation(13))  # 13: file names stay distinct
    added = {"FrameOfReferenceUID": generate_uid()}
    if complete:
        added.update(StudyInstanceUID=generate_uid(), PatientName="Test^Phantom", PatientID="P-1", StudyID="S-1")
        added.update(SeriesNumber=4, SliceThickness="2.5")
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        for keyword, value in added.items():
            setattr(ds, keyword, value)
        ds.save_as(path, enforce_file_format=True)
    return folder


def _read_back(seg_path: Path, source: Path, nifti_path: Path, labels: dict[int, int]) -> int:
    """Check every frame of the SEG against the NIfTI label map; return the number of frames."""
    import highdicom as hd
    import pydicom

    seg = hd.seg.segread(seg_path)
    sources = {}
    for path in source.iterdir():
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        uid = str(ds.SOPInstanceUID or ds.file_meta.MediaStorageSOPInstanceUID)
        sources[uid] = ds
    referenced = {
        str(item.ReferencedSOPInstanceUID)
        for series in seg.ReferencedSeriesSequence
        for item in series.ReferencedInstanceSequence
    }
    assert referenced == set(sources)  # every source instance, and nothing else
    nifti = nib.load(nifti_path)
    expected = np.asarray(nifti.dataobj)
    to_voxel = np.linalg.inv(nifti.affine)
    pixels = seg.pixel_array if seg.NumberOfFrames > 1 else seg.pixel_array[None]
    seen = {number: set() for number in labels}
    for frame, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        identification = item if "SegmentIdentificationSequence" in item else seg.SharedFunctionalGroupsSequence[0]
        number = int(identification.SegmentIdentificationSequence[0].ReferencedSegmentNumber)  # shared: one segment
        uid = str(item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
        ds = sources[uid]
        position = [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient]
        assert np.allclose(position, [float(v) for v in ds.ImagePositionPatient], atol=1e-3)
        ras = np.array([-position[0], -position[1], position[2], 1.0])  # LPS -> RAS
        i, j, k = (to_voxel @ ras)[:3]
        assert abs(i) < 1e-3 and abs(j) < 1e-3 and abs(k - round(k)) < 1e-3  # the slice's first voxel
        k = int(round(k))
        assert np.array_equal(pixels[frame].astype(bool), expected[:, :, k].T == labels[number]), (frame, k)
        seen[number].add(k)
    for number, label in labels.items():  # the frames left out are the empty slices
        assert seen[number] == set(np.flatnonzero((expected == label).any(axis=(0, 1)))), number
    return int(seg.NumberOfFrames)


def test_seg_frames_are_the_label_maps_slices(tmp_path, fresh_seed):
    import highdicom as hd
    import pydicom

    source = _series(tmp_path / "series", fresh_seed)
    volume = read_volume(source)
    targets = [
        Target(name="kidney_left", label=3, points=[[10, 9, 5]]),
        Target(name="my lesion", label=200, points=[[22, 18, 9]]),
    ]
    result = segment(volume, targets, EllipsoidPredictor((6.0, 5.0, 9.0), 64))
    write_result(result, tmp_path / "labels.nii.gz")
    write_result(result, tmp_path / "seg.dcm")

    frames = _read_back(tmp_path / "seg.dcm", source, tmp_path / "labels.nii.gz", {1: 3, 2: 200})
    assert frames > 4
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    first = pydicom.dcmread(next(source.iterdir()), stop_before_pixels=True)
    assert seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    assert seg.StudyInstanceUID == first.StudyInstanceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == first.SeriesInstanceUID
    assert (seg.FrameOfReferenceUID, seg.PatientID, seg.PatientName) == (
        first.FrameOfReferenceUID,
        "P-1",
        "Test^Phantom",
    )
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["kidney_left", "my lesion"]
    kidney_type = seg.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0]
    assert (kidney_type.CodeValue, kidney_type.SegmentedPropertyTypeModifierCodeSequence[0].CodeMeaning) == (
        "64033007",
        "Left",
    )
    assert seg.SegmentSequence[1].SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Tissue"
    sidecar = json.loads((tmp_path / "seg.json").read_text())
    assert sidecar["files"]["label_map"] == "seg.dcm"
    assert sidecar["dicom_seg"]["frames"] == frames and "source_uids_derived" not in sidecar["dicom_seg"]
    assert [(s["segment_number"], s["label"]) for s in sidecar["dicom_seg"]["segments"]] == [(1, 3), (2, 200)]


def test_seg_of_an_empty_result_holds_its_segments_and_empty_frames(tmp_path, fresh_seed, capfd):
    import highdicom as hd

    source = _series(tmp_path / "series", fresh_seed, complete=False)
    result = segment(read_volume(source), Target(name="liver", points=[[10, 9, 5]]), EllipsoidPredictor(4.0, 64))
    result.label_map[:] = 0  # as when the model finds nothing
    write_result(result, tmp_path / "empty.dcm")
    seg = hd.seg.segread(tmp_path / "empty.dcm")
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["liver"]
    assert int(seg.NumberOfFrames) == 13 and not seg.pixel_array.any()  # a SEG needs frames: all, empty
    # this minimal series has no study UID: the SEG gets a derived one, and the sidecar says so;
    # highdicom's log line about the empty image lands in the record, not on the terminal
    sidecar = json.loads((tmp_path / "empty.json").read_text())
    assert sidecar["dicom_seg"]["source_uids_derived"] == ["StudyInstanceUID"]
    assert any("empty image" in note for note in sidecar["dicom_seg"]["notes"])
    captured = capfd.readouterr()
    assert "empty image" not in captured.err + captured.out


def test_blanked_identifiers_are_filled_from_the_file_meta_or_derived_the_same_each_time(tmp_path, fresh_seed):
    import highdicom as hd

    source = _series(tmp_path / "series", fresh_seed, complete=False)
    for path in source.iterdir():  # as an anonymiser that blanks UIDs leaves them
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID, ds.SOPClassUID, ds.SeriesInstanceUID = "", "", ""
        ds.save_as(path)
    result = segment(read_volume(source), Target(name="liver", points=[[10, 9, 5]]), EllipsoidPredictor(5.0, 64))
    write_result(result, tmp_path / "labels.nii.gz")
    write_result(result, tmp_path / "first.dcm")
    write_result(result, tmp_path / "second.dcm")
    _read_back(tmp_path / "first.dcm", source, tmp_path / "labels.nii.gz", {1: 1})  # file-meta UIDs referenced
    first, second = hd.seg.segread(tmp_path / "first.dcm"), hd.seg.segread(tmp_path / "second.dcm")
    assert first.StudyInstanceUID == second.StudyInstanceUID
    assert first.ReferencedSeriesSequence[0].SeriesInstanceUID == second.ReferencedSeriesSequence[0].SeriesInstanceUID
    assert first.SOPInstanceUID != second.SOPInstanceUID
    sidecar = json.loads((tmp_path / "first.json").read_text())
    assert sidecar["dicom_seg"]["source_uids_derived"] == ["StudyInstanceUID", "SeriesInstanceUID"]


def test_a_series_without_a_frame_of_reference_is_refused(tmp_path, fresh_seed):
    import pydicom

    source = _series(tmp_path / "series", fresh_seed, complete=False)
    for path in source.iterdir():
        ds = pydicom.dcmread(path)
        del ds.FrameOfReferenceUID
        ds.save_as(path, enforce_file_format=True)
    result = segment(read_volume(source), Target(points=[[10, 9, 5]]), EllipsoidPredictor(4.0, 64))
    with pytest.raises(DicomSegError, match="has no FrameOfReferenceUID"):
        write_result(result, tmp_path / "seg.dcm")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series"]


def test_a_dcm_output_needs_a_dicom_series(tmp_path):
    volume = nib.Nifti1Image(np.zeros((12, 12, 8), np.int16), np.eye(4))
    volume.to_filename(str(tmp_path / "ct.nii.gz"))
    result = segment(tmp_path / "ct.nii.gz", Target(points=[[6, 6, 4]]), EllipsoidPredictor(4.0, 64))
    with pytest.raises(DicomSegError, match=r"needs a DICOM series folder as input.*write \.nii\.gz instead"):
        write_result(result, tmp_path / "seg.dcm")
    runner = CliRunner()
    done = runner.invoke(
        main,
        ["segment", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "seg.dcm"), "--point", "6,6,4"]
        + ["--weights", str(tmp_path / "no-such-weights.safetensors")],
    )
    assert done.exit_code == 2
    assert done.output.count("\n") == 1 and done.output.startswith("Error: ") and "DICOM SEG (.dcm)" in done.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct.nii.gz"]  # refused before the model loads


def test_without_highdicom_a_dcm_output_says_what_to_install(tmp_path, fresh_seed, monkeypatch):
    import sys

    from sammoe_core.io.outputs import planned_outputs

    source = _series(tmp_path / "series", fresh_seed)
    monkeypatch.setitem(sys.modules, "highdicom", None)  # as if not installed
    with pytest.raises(DicomSegError, match=r"needs highdicom; install it with pip install 'sammoe\[dicom\]'"):
        planned_outputs(tmp_path / "seg.dcm", source, ["liver"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series"]


def test_a_manifest_row_can_ask_for_a_dicom_seg(tmp_path, fresh_seed):
    from sammoe_core.distributed import LocalEngine, SegmentSettings, segment_batch

    _series(tmp_path / "series", fresh_seed)
    nib.Nifti1Image(np.zeros((12, 12, 8), np.int16), np.eye(4)).to_filename(str(tmp_path / "ct.nii.gz"))
    listing = tmp_path / "list.jsonl"
    rows = [{"image": "series", "output": "p1.dcm"}, {"image": "ct.nii.gz", "output": "p2.dcm"}]
    listing.write_text("".join(json.dumps(row) + "\n" for row in rows))
    settings = SegmentSettings(prompts=(Target(name="liver", points=[[10, 9, 5]]),), statistics=True)
    report = segment_batch(listing, tmp_path / "out", LocalEngine(EllipsoidPredictor(5.0, 64)), settings, quiet=True)
    assert [c["status"] for c in report.cases] == ["done", "failed"]
    assert "needs a DICOM series folder as input" in report.cases[1]["error"]
    assert report.cases[0]["case"] == "p1"
    seg = pydicom.dcmread(tmp_path / "out" / "p1.dcm")
    assert seg.Modality == "SEG" and seg.SegmentSequence[0].SegmentLabel == "liver"
    assert json.loads((tmp_path / "out" / "p1.statistics.json").read_text())["liver"]["voxel_count"] > 0
    assert not (tmp_path / "out" / "p2.dcm").exists() and not (tmp_path / "out" / "p2.json").exists()


@pytest.mark.skipif(not (REAL_CT / "series").is_dir(), reason=f"the shared real CT series is not at {REAL_CT}")
def test_the_real_ct_series_gives_a_seg_that_references_it(tmp_path):
    import highdicom as hd

    source = REAL_CT / "series"
    volume = read_volume(source)
    # clicks at the centres of TotalSegmentator's liver and spleen labels; the ellipsoids stay inside them
    targets = [Target(name="liver", label=5, points=[[178, 278, 10]]), Target(name="spleen", points=[[352, 324, 10]])]
    result = segment(volume, targets, EllipsoidPredictor((20.0, 20.0, 8.0), 64))
    write_result(result, tmp_path / "labels.nii.gz", statistics=True)
    write_result(result, tmp_path / "real.dcm")
    frames = _read_back(tmp_path / "real.dcm", source, tmp_path / "labels.nii.gz", {1: 5, 2: 1})
    assert frames >= 10
    seg = hd.seg.segread(tmp_path / "real.dcm")
    assert [s.SegmentedPropertyTypeCodeSequence[0].CodeMeaning for s in seg.SegmentSequence] == ["Liver", "Spleen"]
    sidecar = json.loads((tmp_path / "real.json").read_text())
    # the shared series is anonymised: its study and series UIDs are empty, so the SEG says it made them
    assert sidecar["dicom_seg"]["source_uids_derived"] == ["StudyInstanceUID", "SeriesInstanceUID"]
    assert sidecar["dicom_seg"]["referenced_instances"] == 20
    statistics = json.loads((tmp_path / "labels.statistics.json").read_text())
    for organ in ("liver", "spleen"):  # soft tissue in Hounsfield units
        assert 0 < statistics[organ]["intensity_median"] < 200, statistics[organ]
