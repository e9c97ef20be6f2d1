"""Bounds on what one request may ask for, checked before any expensive work.

A volume's voxel count is checked from its header, before its data is read or a model loads
(``SAMMOE_MAX_VOXELS`` or ``--max-voxels`` raise the budget); prompts files, targets and clicks
have fixed bounds; only regular files are read (a FIFO or a device would hang or never end).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sammoe_core.errors import InputError, ResourceLimitError

DEFAULT_MAX_VOXELS = 600_000_000  # about 2.4 GB as float32: a 512 x 512 x 2300 CT
MAX_TARGETS = 255
MAX_CLICKS_PER_TARGET = 256
MAX_PROMPTS_FILE_BYTES = 4 << 20
MAX_ABS_INTENSITY = 1e7  # beyond any CT or MR scale: such values are corrupt, not signal


def max_voxels(override: int | None = None) -> int:
    """The voxel budget of one volume: ``override``, else ``SAMMOE_MAX_VOXELS``, else the default."""
    if override is not None:
        return int(override)
    env = os.environ.get("SAMMOE_MAX_VOXELS", "").strip()
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise InputError(f"SAMMOE_MAX_VOXELS={env!r}: expected a number of voxels") from None
    return DEFAULT_MAX_VOXELS


def check_voxel_budget(shape: tuple[int, ...], source: str, budget: int | None = None) -> None:
    """Refuse a volume whose declared size exceeds the budget (a clear error naming the limit)."""
    count = 1
    for n in shape:
        count *= int(n)
    limit = max_voxels(budget)
    if count > limit:
        raise ResourceLimitError(
            f"{source}: {count:,} voxels (shape {'x'.join(str(int(n)) for n in shape)}) exceed the limit of "
            f"{limit:,}; raise it with --max-voxels or SAMMOE_MAX_VOXELS if this machine has the memory"
        )


def regular_file(path: Path, what: str = "file") -> os.stat_result:
    """``stat`` of ``path``, which must be a regular file (symlinks followed): a FIFO, socket or
    device is refused before it is opened."""
    st = path.stat()
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{path}: a folder, not a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path}: not a regular file (a pipe, socket or device); a {what} must be a file")
    return st
