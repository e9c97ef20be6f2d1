"""A DICOM series folder as a :class:`Volume` (pydicom, the optional ``sammoe[dicom]`` extra).

pydicom parses the files; this module only puts the slices in order and writes the affine the
standard way: array axes are (column, row, slice), so axis 0 runs along the first direction
cosine of ImageOrientationPatient with the column spacing, axis 1 along the second with the row
spacing, and axis 2 from the first slice position to the last. DICOM's LPS world is flipped to
RAS (x and y negated), the convention of NIfTI and of every sammoe prompt in millimetres.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sammoe_core.io.volumes.volume import Volume, VolumeError, make_volume

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_REQUIRED = ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing", "Rows", "Columns")


def looks_like_dicom(path: Path) -> bool:
    """A Part-10 file: 'DICM' after the 128-byte preamble."""
    try:
        with open(path, "rb") as f:
            return f.read(132)[128:] == b"DICM"
    except OSError:
        return False


def _pydicom(folder: Path) -> Any:
    try:
        import pydicom
    except ImportError:
        raise VolumeError(
            f"{folder}: reading DICOM needs pydicom; install it with pip install 'sammoe[dicom]'"
        ) from None
    return pydicom


def _image_headers(folder: Path, pydicom: Any) -> tuple[list[tuple[Path, Any]], list[Path]]:
    """The DICOM image headers in ``folder``, and the files that are not DICOM images."""
    headers, skipped = [], []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        if not looks_like_dicom(path):
            skipped.append(path)
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (pydicom.errors.InvalidDicomError, OSError, ValueError, EOFError) as e:
            raise VolumeError(f"{path}: unreadable DICOM file ({e})") from None
        if "ImagePositionPatient" in ds or "PixelSpacing" in ds or "Rows" in ds:
            headers.append((path, ds))
        else:
            skipped.append(path)
    return headers, skipped


def _one_series(headers: list[tuple[Path, Any]], folder: Path) -> list[tuple[Path, Any]]:
    if not headers:
        raise VolumeError(f"{folder}: no DICOM image files in this folder")
    series = {str(ds.get("SeriesInstanceUID", "")) for _, ds in headers}
    if len(series) > 1:
        raise VolumeError(f"{folder}: holds {len(series)} DICOM series; point the input at one series folder")
    for path, ds in headers:
        missing = [k for k in _REQUIRED if k not in ds]
        if missing:
            raise VolumeError(f"{path}: DICOM image without {', '.join(missing)}; cannot place it in space")
        for tag, count in (("ImageOrientationPatient", 6), ("ImagePositionPatient", 3), ("PixelSpacing", 2)):
            value = ds.get(tag)
            try:
                numbers = [float(v) for v in value]
            except (TypeError, ValueError):
                numbers = []
            if len(numbers) != count or not all(np.isfinite(numbers)):
                raise VolumeError(f"{path}: {tag} must hold {count} finite numbers (found {value!r})")
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise VolumeError(f"{path}: multi-frame DICOM is not supported; convert it to NIfTI (e.g. dcm2niix)")
    return headers


def _series_affine(headers: list[tuple[Path, Any]], folder: Path, skipped: list[Path]) -> tuple[np.ndarray, list[Path]]:
    first = headers[0][1]
    cosines = np.asarray(first.ImageOrientationPatient, dtype=np.float64)
    along_row, along_column = cosines[:3], cosines[3:]
    normal = np.cross(along_row, along_column)
    positions = [(float(np.dot(normal, np.asarray(ds.ImagePositionPatient, float))), p, ds) for p, ds in headers]
    positions.sort(key=lambda item: item[0])
    if len(positions) < 2:
        raise VolumeError(f"{folder}: a single DICOM slice is 2D data; a 3D volume is needed")
    steps = np.diff([d for d, _, _ in positions])
    if np.any(steps < 1e-4):
        raise VolumeError(f"{folder}: two slices share one position; is this more than one acquisition?")
    if np.ptp(steps) > 0.01 * np.mean(steps) + 1e-4:
        gap = int(np.argmax(steps))
        names = (positions[gap][1].name, positions[gap + 1][1].name)
        ignored = (
            f"; {len(skipped)} file(s) here are not DICOM images and were left out: "
            + ", ".join(p.name for p in skipped[:5])
            if skipped
            else ""
        )
        raise VolumeError(
            f"{folder}: non-uniform slice spacing ({steps.min():.3f} to {steps.max():.3f} mm; the widest gap is "
            f"between {names[0]} and {names[1]}){ignored}; resample it to a regular grid first"
        )
    row_spacing, column_spacing = (float(v) for v in first.PixelSpacing)
    start = np.asarray(positions[0][2].ImagePositionPatient, dtype=np.float64)
    end = np.asarray(positions[-1][2].ImagePositionPatient, dtype=np.float64)
    slice_step = (end - start) / (len(positions) - 1)
    lps = np.eye(4)
    lps[:3, 0] = along_row * column_spacing
    lps[:3, 1] = along_column * row_spacing
    lps[:3, 2] = slice_step
    lps[:3, 3] = start
    return _LPS_TO_RAS @ lps, [p for _, p, _ in positions]


def check_dicom_series(folder: str | Path, max_voxels: int | None = None) -> tuple[Any, np.ndarray, list[Path]]:
    """The series' headers alone, checked: one series, a regular grid, the voxel budget.
    Returns pydicom, the affine and the slice files in order."""
    from sammoe_core.io.limits import check_voxel_budget

    folder = Path(folder)
    pydicom = _pydicom(folder)
    found, skipped = _image_headers(folder, pydicom)
    headers = _one_series(found, folder)
    affine, ordered = _series_affine(headers, folder, skipped)
    first = headers[0][1]
    check_voxel_budget(
        (int(first.get("Columns", 0) or 0), int(first.get("Rows", 0) or 0), len(ordered)), str(folder), max_voxels
    )
    return pydicom, affine, ordered


def read_dicom_series(folder: str | Path, max_voxels: int | None = None) -> Volume:
    """Read one DICOM series (one file per slice) from ``folder`` into a checked :class:`Volume`
    (the voxel budget is checked from the headers before any pixel data is read)."""
    folder = Path(folder)
    pydicom, affine, ordered = check_dicom_series(folder, max_voxels)
    slices = []
    for path in ordered:
        try:
            ds = pydicom.dcmread(path)
            pixels = ds.pixel_array.astype(np.float32)
        except Exception as e:  # pydicom's pixel handlers raise many types for bad/unsupported data
            raise VolumeError(f"{path}: unreadable DICOM pixel data ({type(e).__name__}: {e})") from None
        if pixels.ndim != 2:
            raise VolumeError(f"{path}: pixel data of shape {pixels.shape}; one 2D slice per file is needed")
        slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
        slices.append(pixels.T * slope + intercept)
    if len({s.shape for s in slices}) > 1:
        raise VolumeError(f"{folder}: slices of different sizes in one series")
    return make_volume(np.stack(slices, axis=-1), affine, None, str(folder))
