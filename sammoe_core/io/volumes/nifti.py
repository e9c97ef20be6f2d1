"""NIfTI in and out (nibabel): checked reading of ``.nii`` / ``.nii.gz``, outputs on the input grid.

Reading checks the header first (shape, voxel budget), then reads exactly the bytes it promises
and the stream to its end, so a damaged gzip stream (bad CRC, cut short) is an error rather than
silently wrong voxels and a small file declaring a huge volume costs nothing. Outputs copy the
input header: same shape, affine, qform/sform and codes.
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from sammoe_core.io.limits import check_voxel_budget
from sammoe_core.io.volumes.volume import Volume, VolumeError, checked_shape, make_volume

_MAX_TRAILING_BYTES = 16 << 20  # after the voxels; read to reach the gzip CRC

NIFTI_SUFFIXES = (".nii", ".nii.gz")
_NIFTI1_MAGIC = (344, b"n+1\x00")
_NIFTI2_MAGIC = (4, b"n+2\x00")
_GZIP_MAGIC = b"\x1f\x8b"


def is_nifti_path(path: str | Path) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def _open(path: Path) -> Any:
    """The file as a binary stream (decompressed on the fly for ``.gz``)."""
    if path.name.lower().endswith(".gz"):
        with open(path, "rb") as f:
            if f.read(2) != _GZIP_MAGIC:
                raise VolumeError(f"{path}: not a volume (no gzip data, though the name ends in .gz)")
        return gzip.open(path, "rb")
    return open(path, "rb")


def _header(path: Path, f: Any, max_voxels: int | None) -> tuple[bytes, Any, tuple[int, int, int], int]:
    """From an open stream: the first bytes, the image class, the checked 3D shape and the number
    of bytes up to the end of the voxel data."""
    import nibabel as nib

    head = f.read(544)
    klass = _image_class(head, path)
    header_class = nib.Nifti2Header if klass is nib.Nifti2Image else nib.Nifti1Header
    try:
        header = header_class.from_fileobj(io.BytesIO(head), check=False)
        dims = header["dim"]
        offset = int(header.get_data_offset())
        itemsize = header.get_data_dtype().itemsize
    except Exception as e:  # nibabel raises many kinds for garbage headers
        raise VolumeError(f"{path}: unreadable NIfTI header ({' '.join(str(e).split())})") from None
    ndim = int(dims[0])
    if not 1 <= ndim <= 7:
        raise VolumeError(f"{path}: unreadable NIfTI header (dim[0] = {ndim}, expected 1 to 7)")
    stored = tuple(int(n) for n in dims[1 : ndim + 1])
    if any(n < 0 for n in stored):
        raise VolumeError(f"{path}: negative dimension in the header (shape {stored})")
    shape = checked_shape(stored, str(path))
    check_voxel_budget(shape, str(path), max_voxels)
    return head, klass, shape, offset + int(np.prod(shape, dtype=np.int64)) * itemsize


def _read_checked(path: Path, max_voxels: int | None) -> tuple[bytes, Any]:
    """The file's bytes and image class, after checking the header alone: the image type, a
    valid 3D shape and the voxel budget. No more bytes than the header promises are kept, so a
    small gzip that declares a huge volume costs nothing; the rest of the stream is read (in
    bounded chunks) to reach the gzip CRC."""
    try:
        with _open(path) as f:
            head, klass, _, needed = _header(path, f, max_voxels)
            raw = head[:needed] + (f.read(needed - len(head)) if needed > len(head) else b"")
            trailing = max(0, len(head) - needed)
            while chunk := f.read(1 << 20):  # to the end: the gzip CRC is checked there
                trailing += len(chunk)
                if trailing > _MAX_TRAILING_BYTES:
                    raise VolumeError(
                        f"{path}: more than {_MAX_TRAILING_BYTES} bytes after the voxels the header declares"
                    )
    except gzip.BadGzipFile as e:
        raise VolumeError(f"{path}: corrupt gzip data ({e})") from None
    except (EOFError, zlib.error) as e:
        raise VolumeError(f"{path}: truncated or corrupt gzip data ({e})") from None
    if len(raw) < needed:
        raise VolumeError(f"{path}: truncated file ({len(raw)} bytes, the header promises {needed})")
    return raw, klass


def _image_class(raw: bytes, path: Path) -> Any:
    import nibabel as nib

    for (offset, magic), klass in ((_NIFTI1_MAGIC, nib.Nifti1Image), (_NIFTI2_MAGIC, nib.Nifti2Image)):
        if raw[offset : offset + len(magic)] == magic:
            return klass
    raise VolumeError(f"{path}: not a volume (no single-file NIfTI-1/2 header)")


def read_nifti(path: str | Path, max_voxels: int | None = None) -> Volume:
    """Read a NIfTI-1/2 file into a checked :class:`Volume` (scaling applied, float32).

    The header is checked first (shape, voxel budget: see :mod:`sammoe_core.io.limits`); gzip data
    is CRC-checked as it is read to its end.
    """
    from nibabel.spatialimages import HeaderDataError, ImageDataError

    path = Path(path)
    raw, klass = _read_checked(path, max_voxels)
    try:
        img = klass.from_bytes(raw)
    except (HeaderDataError, ImageDataError, ValueError) as e:
        raise VolumeError(f"{path}: unreadable NIfTI header ({' '.join(str(e).split())})") from None
    shape = checked_shape(img.shape, str(path))
    try:
        data = np.asarray(img.dataobj)
    except (HeaderDataError, ImageDataError, ValueError, OSError) as e:
        raise VolumeError(f"{path}: unreadable voxel data ({' '.join(str(e).split())})") from None
    return make_volume(data.reshape(shape), img.affine, img.header.copy(), str(path))


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
    klass: type[nib.Nifti1Image] = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
    # affine=None keeps the header's qform and sform, matrices and codes, exactly as they were.
    return klass(data, None, header=header)
