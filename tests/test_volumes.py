"""Reading volumes (NIfTI, DICOM series, arrays), refusing bad ones, and outputs on the input grid."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
import torch
from segment_support import make_affine, rotation, write_dicom_series

from sammoe_core.io.volumes import VolumeError, apply_affine, as_volume, read_volume, resample
from sammoe_core.io.volumes.nifti import nifti_like


def _nifti(path, data, affine=None, **codes):
    img = nib.Nifti1Image(np.asarray(data), np.diag([1.5, 1.5, 2.0, 1.0]) if affine is None else affine)
    for kind, code in codes.items():
        getattr(img, f"set_{kind}")(img.affine, code=code)
    img.to_filename(str(path))
    return path


def test_nifti_round_trip_keeps_array_affine_and_scaling(tmp_path, fresh_seed):
    rng = np.random.default_rng(fresh_seed)
    data = rng.integers(-1000, 2000, (9, 8, 7)).astype(np.int16)
    affine = make_affine(rotation(15, 5) @ np.diag([-1.0, -1, 1]), (0.9, 1.1, 2.5), (4, 4, 3), (10, 20, 30))
    img = nib.Nifti1Image(data, affine)
    img.header.set_slope_inter(0.5, 10)
    for name in ("a.nii", "a.nii.gz"):
        img.to_filename(str(tmp_path / name))
        volume = read_volume(tmp_path / name)
        assert volume.shape == (9, 8, 7) and volume.array.dtype == np.float32
        assert np.allclose(volume.array, data * 0.5 + 10)
        assert np.allclose(volume.affine, img.affine, atol=1e-5)
        assert np.allclose(volume.spacing, (0.9, 1.1, 2.5), atol=1e-5)


def test_trailing_singleton_axis_is_dropped(tmp_path):
    volume = read_volume(_nifti(tmp_path / "t.nii.gz", np.ones((5, 6, 7, 1), np.float32)))
    assert volume.shape == (5, 6, 7)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (np.ones((6, 7), np.float32), "2D data"),
        (np.ones((6, 7, 1), np.float32), "2D data"),
        (np.ones((6, 7, 5, 3), np.float32), "4D data"),
        (np.ones((6, 0, 5), np.float32), "zero-size axis"),
        (np.where(np.eye(6, dtype=bool)[:, :, None], np.nan, 1.0).repeat(4, axis=2).astype(np.float32), "NaN/Inf"),
        (np.full((4, 4, 4), np.inf, np.float32), "NaN/Inf"),
    ],
)
def test_unusable_arrays_are_refused_naming_the_file(tmp_path, data, problem):
    path = _nifti(tmp_path / "bad.nii.gz", data)
    with pytest.raises(VolumeError, match=problem) as caught:
        read_volume(path)
    assert str(path) in str(caught.value)
    with pytest.raises(VolumeError, match=problem):
        as_volume(data, np.eye(4))


def test_damaged_files_are_refused(tmp_path):
    good = _nifti(tmp_path / "good.nii.gz", np.random.rand(20, 20, 20).astype(np.float32))
    raw = good.read_bytes()
    corrupt = bytearray(raw)
    corrupt[len(raw) // 2 : len(raw) // 2 + 40] = bytes(40)
    cases = {
        "corrupt.nii.gz": (bytes(corrupt), "corrupt gzip"),
        "cut.nii.gz": (raw[: len(raw) // 2], "truncated"),
        "cut.nii": (gzip.decompress(raw)[:5000], "truncated file"),
        "text.nii.gz": (b"hello, not a volume\n" * 30, "not a volume .no gzip data"),
        "text.nii": (b"hello, not a volume\n" * 30, "not a volume .no single-file NIfTI"),
        "zipped-text.nii.gz": (gzip.compress(b"hello, not a volume\n" * 30), "not a volume .no single-file NIfTI"),
    }
    for name, (content, problem) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(VolumeError, match=problem) as caught:
            read_volume(path)
        assert str(caught.value).startswith(str(path)), name
    for path, problem in ((tmp_path / "picture.png", "not a volume"), (tmp_path / "missing.nii.gz", "no such file")):
        if problem == "not a volume":
            path.write_bytes(b"\x89PNG....")
        with pytest.raises(VolumeError, match=problem):
            read_volume(path)


def test_singular_affine_is_refused():
    with pytest.raises(VolumeError, match="singular"):
        as_volume(np.ones((4, 4, 4)), np.diag([1.0, 0.0, 1.0, 1.0]))
    with pytest.raises(VolumeError, match="needs its affine"):
        as_volume(np.ones((4, 4, 4)))


@pytest.mark.parametrize("first_axis", [-1.0, 1.0])
def test_dicom_series_folder_reads_with_its_geometry(tmp_path, fresh_seed, first_axis):
    rng = np.random.default_rng(fresh_seed)
    hounsfield = rng.integers(-1000, 1500, (12, 10, 6)).astype(np.float32)
    affine = make_affine(rotation(12, 8) @ np.diag([first_axis, 1, 1]), (0.8, 0.7, 2.5), (6, 5, 3), (5, -10, 40))
    folder = tmp_path / "series"
    folder.mkdir()
    write_dicom_series(folder, hounsfield, affine, order=rng.permutation(6))
    (folder / "README.txt").write_text("not a DICOM file")
    volume = read_volume(folder)
    assert volume.shape == (12, 10, 6) and volume.header is None
    # every voxel read sits at the world position of the voxel written with the same value
    # (the reader may order slices along the other direction: that is the same image)
    read_index = np.stack(np.meshgrid(*[np.arange(n) for n in volume.shape], indexing="ij"), -1).reshape(-1, 3)
    written_index = apply_affine(np.linalg.inv(affine) @ volume.affine, read_index)
    assert np.abs(written_index - np.round(written_index)).max() < 1e-3
    written_index = np.round(written_index).astype(int)
    assert np.array_equal(volume.array[tuple(read_index.T)], hounsfield[tuple(written_index.T)])
    assert np.allclose(volume.spacing, (0.8, 0.7, 2.5), atol=1e-4)
    # and a label map on it comes out as NIfTI with this geometry, codes set to scanner
    out = nifti_like(np.zeros(volume.shape, np.uint8), volume)
    assert np.allclose(out.affine, volume.affine, atol=1e-4)
    assert int(out.header["sform_code"]) == 1 and int(out.header["qform_code"]) == 1


def test_dicom_folder_problems(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(VolumeError, match="without DICOM files"):
        read_volume(empty)
    one = tmp_path / "one"
    one.mkdir()
    write_dicom_series(one, np.zeros((4, 4, 1), np.float32), np.eye(4), order=[0])
    with pytest.raises(VolumeError, match="2D data"):
        read_volume(one)


@pytest.mark.parametrize("klass", [nib.Nifti1Image, nib.Nifti2Image])
def test_output_header_equals_input_header(tmp_path, klass):
    affine = make_affine(rotation(20, 10), (0.8, 0.9, 3.0), (3, 3, 2), (1, 2, 3))
    img = klass(np.zeros((7, 6, 5), np.int16), affine)
    img.set_qform(affine @ np.diag([1, 1, 1, 1.0]), code=1)
    img.set_sform(affine, code=4)
    img.header["descrip"] = b"scanner header"
    img.to_filename(str(tmp_path / "in.nii.gz"))
    volume = read_volume(tmp_path / "in.nii.gz")
    labels = np.zeros(volume.shape, np.uint8)
    labels[1:3, 2, 3] = 5
    nifti_like(labels, volume).to_filename(str(tmp_path / "out.nii.gz"))
    original, written = nib.load(tmp_path / "in.nii.gz"), nib.load(tmp_path / "out.nii.gz")
    assert type(written) is klass
    assert written.shape == original.shape
    assert np.array_equal(written.affine, original.affine)
    assert np.array_equal(written.get_qform(), original.get_qform())
    assert np.array_equal(written.get_sform(), original.get_sform())
    for key in ("qform_code", "sform_code", "pixdim", "xyzt_units", "descrip"):
        assert np.array_equal(written.header[key], original.header[key]), key
    assert written.get_data_dtype() == np.uint8
    assert np.array_equal(np.asarray(written.dataobj), labels)


def test_resample_is_exact_for_grid_maps(fresh_seed):
    source = torch.from_numpy(np.random.default_rng(fresh_seed).random((5, 6, 7)).astype(np.float32))
    assert torch.equal(resample(source, np.eye(4), (5, 6, 7), mode="nearest"), source)
    assert torch.allclose(resample(source, np.eye(4), (5, 6, 7)), source, atol=1e-5)
    swap = np.zeros((4, 4))
    swap[0, 2] = swap[1, 1] = swap[2, 0] = swap[3, 3] = 1
    assert torch.allclose(resample(source, swap, (7, 6, 5)), source.permute(2, 1, 0), atol=1e-5)
    half = np.eye(4)
    half[2, 3] = 0.5
    shifted = resample(source, half, (5, 6, 7))
    assert torch.allclose(shifted[:, :, :6], (source[:, :, :6] + source[:, :, 1:]) / 2, atol=1e-5)
    assert torch.allclose(shifted[:, :, 6], source[:, :, 6], atol=1e-5)  # still inside the last voxel: edge value
    beyond = np.eye(4)
    beyond[2, 3] = 0.6
    assert torch.all(resample(source, beyond, (5, 6, 7))[:, :, 6] == 0)  # outside: constant 0
    values, inside = resample(source, beyond, (5, 6, 7), start=(0, 0, -2), return_inside=True)
    assert not inside[:, :, 0].any() and inside[:, :, 1:].all()


def test_a_garbage_slice_is_named_in_the_spacing_error(tmp_path):
    """Before: a garbage slice was dropped silently and the error blamed the spacing alone."""
    folder = tmp_path / "series"
    folder.mkdir()
    write_dicom_series(folder, np.zeros((8, 8, 6), np.float32), np.eye(4), order=range(6))
    victim = sorted(folder.iterdir())[2]
    victim.write_bytes(b"garbage, not DICOM" * 20)
    with pytest.raises(
        VolumeError, match=f"widest gap is between .*; 1 file\\(s\\) here are not DICOM images .*{victim.name}"
    ):
        read_volume(folder)


def _axis_aligned_map(rng: np.random.Generator) -> np.ndarray:
    """An index map that permutes, flips, scales and shifts axes, as between a grid and its lattice."""
    matrix = np.eye(4)
    matrix[:3, :3] = 0
    for axis, source_axis in enumerate(rng.permutation(3)):
        scale = rng.choice([0.5, 1.0, 2.0, 1 / 3, 0.73114297, 1.875])
        matrix[source_axis, axis] = rng.choice([-1, 1]) * scale
    matrix[:3, 3] = rng.uniform(-10, 60, 3).round(int(rng.integers(0, 3)))
    return matrix


def test_axis_by_axis_sampling_picks_what_grid_sample_picks(fresh_seed):
    """The fast path (maps that only reorder, flip, scale and shift axes) against grid_sample:
    nearest must pick the very same voxels, ties at half-voxel positions included (scales of 0.5
    and 2 make them); linear agrees to float rounding; the inside test is the same."""
    from sammoe_core.io.volumes.geometry import _resample_grid

    rng = np.random.default_rng(fresh_seed)
    source = torch.from_numpy(rng.normal(0, 100, (40, 50, 30)).astype(np.float32))
    for _ in range(60):
        index_map = _axis_aligned_map(rng)
        shape = tuple(int(n) for n in rng.integers(5, 40, 3))
        start = rng.integers(-20, 20, 3)
        offset = apply_affine(index_map, start.astype(np.float64))
        for mode in ("nearest", "linear"):
            fast, fast_inside = resample(source, index_map, shape, start, mode, return_inside=True)
            slow, slow_inside = _resample_grid(source, index_map, offset, shape, mode)
            assert torch.equal(fast_inside, slow_inside)
            if mode == "nearest":
                assert torch.equal(fast, slow), index_map
            else:
                assert torch.allclose(fast, slow, rtol=0, atol=1e-3), (fast - slow).abs().max()


def test_oblique_maps_are_sampled_through_grid_sample(fresh_seed):
    from sammoe_core.io.volumes.geometry import _axis_permutation, _resample_grid

    angle = np.radians(20)
    oblique = np.eye(4)
    oblique[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    assert _axis_permutation(oblique[:3, :3]) is None
    source = torch.from_numpy(np.random.default_rng(fresh_seed).random((9, 9, 9)).astype(np.float32))
    slow, _ = _resample_grid(source, oblique, np.zeros(3), (9, 9, 9), "linear")
    assert torch.equal(resample(source, oblique, (9, 9, 9)), slow)
