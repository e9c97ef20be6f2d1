"""The one entry point for inputs: a path (NIfTI file or DICOM series folder) or an in-memory image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sammoe_core.io.limits import regular_file
from sammoe_core.io.volumes.dicom import looks_like_dicom, read_dicom_series
from sammoe_core.io.volumes.nifti import NIFTI_SUFFIXES, is_nifti_path, read_nifti, volume_from_image
from sammoe_core.io.volumes.volume import Volume, VolumeError, make_volume


def read_volume(path: str | Path, max_voxels: int | None = None) -> Volume:
    """Read a ``.nii`` / ``.nii.gz`` file or a folder holding one DICOM series.

    Only regular files are opened (a FIFO or device is refused at once), and a volume larger
    than the voxel budget (:mod:`sammoe_core.io.limits`) is refused from its header."""
    path = Path(path)
    if path.is_dir():
        if not any(looks_like_dicom(p) for p in path.iterdir() if p.is_file()):
            raise VolumeError(f"{path}: a folder without DICOM files (expected one DICOM series)")
        return read_dicom_series(path, max_voxels)
    if not path.exists():
        raise VolumeError(f"{path}: no such file or folder")
    if not is_nifti_path(path):
        raise VolumeError(f"{path}: not a volume ({' or '.join(NIFTI_SUFFIXES)} file, or a DICOM series folder)")
    regular_file(path, "volume")
    try:
        return read_nifti(path, max_voxels)
    except PermissionError:
        raise VolumeError(f"{path}: not readable (permission denied)") from None
    except IsADirectoryError:
        raise VolumeError(f"{path}: a folder, not a file") from None


def as_volume(image: Any, affine: Any = None) -> Volume:
    """A :class:`Volume` from a path, a Volume, a nibabel image, or an array plus its affine."""
    if isinstance(image, Volume):
        return image
    if isinstance(image, (str, Path)):
        return read_volume(image)
    if hasattr(image, "dataobj") and hasattr(image, "affine"):
        return volume_from_image(image)
    if affine is None:
        raise VolumeError("<array>: an array needs its affine (voxel indices -> RAS mm); pass affine=")
    return make_volume(image, affine)
