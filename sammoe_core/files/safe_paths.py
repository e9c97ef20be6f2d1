"""Containment of paths that come from data: state files, manifests, prompts, requests, Hub refs.

Every such path is resolved (``..`` collapsed, symlinks followed) and must stay inside the root
it belongs to (``SAMMOE_HOME``, an expert folder, the output folder the user named, the Hub
cache); anything else is an error that names the field it came from.
"""

from __future__ import annotations

from pathlib import Path

from sammoe_core.errors import InputError


class PathEscapeError(InputError):
    """A path taken from data points outside the folder it must stay in."""


def resolve_inside(root: str | Path, path: str | Path, what: str) -> Path:
    """``root / path`` resolved; a :class:`PathEscapeError` naming ``what`` if it leaves ``root``.

    An absolute ``path`` is accepted only when it lies inside ``root`` too.
    """
    try:
        base = Path(root).resolve()
        candidate = (base / path).resolve()
    except (RuntimeError, OSError) as e:  # a symlink loop
        raise PathEscapeError(f"{what} {str(path)!r} cannot be resolved ({e})") from None
    if candidate != base and not candidate.is_relative_to(base):
        raise PathEscapeError(f"{what} {str(path)!r} resolves outside {base} (to {candidate})")
    return candidate


def is_inside(root: str | Path, path: str | Path) -> bool:
    """Whether ``path`` resolves to ``root`` or a path under it."""
    base = Path(root).resolve()
    candidate = Path(path).resolve()
    return candidate == base or candidate.is_relative_to(base)
