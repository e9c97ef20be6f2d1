"""Atomic file output: write to a temporary file beside the target, then rename over it.

Every file sammoe writes for a user (label maps, reports, weights, registry state) goes through
:func:`atomic_output` (a folder of files through :func:`atomic_folder`), so a crash or a bad
input never leaves a partial file behind and nothing is overwritten unless the caller asked for it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sammoe_core.errors import InputError, OutputExistsError

__all__ = ["OutputExistsError", "atomic_folder", "atomic_output", "usual_mode", "write_text_atomic"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def usual_mode(directory: bool = False) -> int:
    """The mode a new file (or folder) gets from the umask; temporary ones start at 0600/0700."""
    return (0o777 if directory else 0o666) & ~_umask()


@contextlib.contextmanager
def atomic_output(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it onto ``path``.

    The temporary name keeps the target's suffixes (``.nii.gz`` writers pick the format from
    them). On any exception the temporary file is removed and the target is left untouched.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: output folder does not exist")
    suffix = "".join(path.suffixes) or ".tmp"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{suffix}", dir=folder)
    os.close(fd)
    os.chmod(tmp_name, usual_mode())  # mkstemp makes 0600; outputs get the usual mode
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not overwrite and path.exists():
            raise OutputExistsError(path)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str, overwrite: bool = False) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def atomic_folder(destination: str | Path, overwrite: bool = False, marker: str | None = None) -> Iterator[Path]:
    """Yield an empty staging folder beside ``destination``; on success it takes its place.

    A failure leaves ``destination`` as it was (with ``overwrite``, the previous folder is only
    removed once the new one is in place) and removes the staging folder. With ``marker`` (a file
    name), ``overwrite`` replaces only an empty folder or one holding that file (an earlier output
    of the same kind), never another folder the user named by mistake.
    """
    destination = Path(destination)
    if destination.exists() and not overwrite:
        raise OutputExistsError(destination)
    if destination.exists() and marker is not None:
        earlier = destination.is_dir() and (not any(destination.iterdir()) or (destination / marker).is_file())
        if not earlier:
            raise InputError(f"{destination}: exists and holds no {marker}; not replaced (choose another folder)")
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    staging.chmod(usual_mode(directory=True))  # mkdtemp makes 0700; the folder gets the usual mode
    try:
        yield staging
        if destination.exists():
            if not overwrite:
                raise OutputExistsError(destination)
            old = staging.with_name(staging.name + ".old")
            destination.rename(old)
            staging.rename(destination)
            shutil.rmtree(old)
        else:
            staging.rename(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
