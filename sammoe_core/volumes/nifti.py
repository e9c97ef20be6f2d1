"""NIfTI in and out (nibabel): checked reading of ``.nii`` / ``.nii.gz``, outputs on the input grid.

Reading decompresses the whole file first, so a damaged gzip stream (bad CRC, cut short) is an
error rather than silently wrong voxels, then checks the header's promised voxel bytes against
what the file holds. Outputs copy the input header: same shape, affine, qform/sform and codes.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .volume import Volume, VolumeError, checked_shape, make_volume

NIFTI_SUFFIXES = (".nii", ".nii.gz")
_NIFTI1_MAGIC = (344, b"n+1\x00")
_NIFTI2_MAGIC = (4, b"n+2\x00")
_GZIP_MAGIC = b"\x1f\x8b"


def is_nifti_path(path: str | Path) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def _file_bytes(path: Path) -> bytes:
    try:
        if path.name.lower().endswith(".gz"):
            with open(path, "rb") as f:
                if f.read(2) != _GZIP_MAGIC:
                    raise VolumeError(f"{path}: not a volume (no gzip data, though the name ends in .gz)")
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except gzip.BadGzipFile as e:
        raise VolumeError(f"{path}: corrupt gzip data ({e})") from None
    except (EOFError, zlib.error) as e:
        raise VolumeError(f"{path}: truncated or corrupt gzip data ({e})") from None


def _image_class(raw: bytes, path: Path) -> Any:
    import nibabel as nib

    for (offset, magic), klass in ((_NIFTI1_MAGIC, nib.Nifti1Image), (_NIFTI2_MAGIC, nib.Nifti2Image)):
        if raw[offset : offset + len(magic)] == magic:
            return klass
    raise VolumeError(f"{path}: not a volume (no single-file NIfTI-1/2 header)")


def read_nifti(path: str | Path) -> Volume:
    """Read a NIfTI-1/2 file into a checked :class:`Volume` (scaling applied, float32)."""
    from nibabel.spatialimages import HeaderDataError, ImageDataError

    path = Path(path)
    raw = _file_bytes(path)
    klass = _image_class(raw, path)
    try:
        img = klass.from_bytes(raw)
    except (HeaderDataError, ImageDataError, ValueError) as e:
        raise VolumeError(f"{path}: unreadable NIfTI header ({' '.join(str(e).split())})") from None
    shape = checked_shape(img.shape, str(path))
    header = img.header
    needed = int(header.get_data_offset()) + int(np.prod(img.shape)) * header.get_data_dtype().itemsize
    if len(raw) < needed:
        raise VolumeError(f"{path}: truncated file ({len(raw)} bytes, the header promises {needed})")
    try:
        data = np.asarray(img.dataobj)
    except (HeaderDataError, ImageDataError, ValueError, OSError) as e:
        raise VolumeError(f"{path}: unreadable voxel data ({' '.join(str(e).split())})") from None
    return make_volume(data.reshape(shape), img.affine, header.copy(), str(path))


def volume_from_image(img: Any, source: str = "<nibabel image>") -> Volume:
    """A checked :class:`Volume` from an in-memory nibabel image (its header is kept if NIfTI)."""
    import nibabel as nib

    checked_shape(img.shape, source)
    header = img.header.copy() if isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)) else None
    return make_volume(np.asarray(img.dataobj), img.affine, header, source)


def nifti_like(data: np.ndarray, reference: Volume) -> Any:
    """A NIfTI image of ``data`` on the reference grid: its header, affine and qform/sform codes.

    ``data`` has the reference's 3D shape, or that shape plus a trailing axis (one volume per
    target). Scaling is reset to none; the voxel type is ``data``'s.
    """
    import nibabel as nib

    if tuple(data.shape[:3]) != reference.shape:
        raise ValueError(f"data shape {data.shape} does not match the grid {reference.shape}")
    header = reference.header
    if header is None:
        img = nib.Nifti1Image(data, reference.affine)
        img.set_qform(reference.affine, code=1)
        img.set_sform(reference.affine, code=1)
        return img
    header = header.copy()
    header.set_data_dtype(data.dtype)
    header.set_data_shape(data.shape)
    header.set_slope_inter(1.0, 0.0)
    header["cal_min"], header["cal_max"] = 0.0, 0.0
    klass = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
    # affine=None keeps the header's qform and sform, matrices and codes, exactly as they were.
    return klass(data, None, header=header)
