"""One mask file per target (``--split``): safe file names from target names, kept in one folder.

Target names come from users, so they are data: each becomes a file name by keeping letters,
digits, ``-``, ``+``, ``.`` and ``_`` (anything else, spaces included, turns into ``_``), never
starting with a dot, never a Windows device name (``CON``, ``NUL``, ``COM1``... get a trailing
``_``), and the path is resolved inside the folder. Two targets whose file names
would be the same (also when they differ only in case, which some file systems ignore) are an
error naming both, rather than one file silently replacing the other.
"""

from __future__ import annotations

import re
from pathlib import Path

from sammoe_core.errors import InputError
from sammoe_core.files.safe_paths import resolve_inside

MASK_SUFFIX = ".nii.gz"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")
_MAX_STEM = 100
_DEVICE_NAMES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


class StructureNameError(InputError):
    """Target names that cannot become distinct file names."""


def file_stem(name: str) -> str:
    """The file name (less suffix) a target name gets."""
    stem = _UNSAFE.sub("_", name.strip())[:_MAX_STEM].lstrip(".") or "target"
    return f"{stem}_" if stem.split(".")[0].upper() in _DEVICE_NAMES else stem


def structure_paths(folder: str | Path, names: list[str]) -> dict[str, Path]:
    """``{name: folder/<stem>.nii.gz}`` for every target name, each checked to stay in ``folder``."""
    folder = Path(folder)
    paths: dict[str, Path] = {}
    taken: dict[str, str] = {}
    for name in names:
        file_name = f"{file_stem(name)}{MASK_SUFFIX}"
        other = taken.get(file_name.lower())
        if other is not None:
            raise StructureNameError(
                f"targets {other!r} and {name!r} would both be written to {folder / file_name}; rename one of them"
            )
        taken[file_name.lower()] = name
        resolve_inside(folder, file_name, "target file name")
        paths[name] = folder / file_name
    return paths
