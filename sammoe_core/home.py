"""Every path under ``SAMMOE_HOME``, in one place, and the checks that the folder is usable.

``SAMMOE_HOME`` (default: the user's data folder for sammoe, from platformdirs) holds::

    registry.json           the local state (experts, foundation, current gate)
    experts/<name>/          copies of experts added from folders or the Hub
    gates/<signature>/       gates trained by ``sammoe retrain-gate``
    foundations/             official checkpoints converted once (``sammoe foundation set hf://...``)
    cache/volumes/           datasets resampled onto the model lattice (training, evaluation)
    cache/gate/              per-prompt features and candidate logits for gate training
    cache/file-hashes.json   sha256 of weight files, remembered by size and mtime

A home that is a file, or cannot be created or written when a command must write, is a
:class:`~sammoe_core.errors.StateError` naming the folder and how to fix it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sammoe_core.errors import StateError

ENV_VAR = "SAMMOE_HOME"


def home_dir() -> Path:
    """``$SAMMOE_HOME``, else the user's data folder for sammoe (platformdirs)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("sammoe"))


@dataclass(frozen=True)
class Home:
    """The layout of one ``SAMMOE_HOME``."""

    root: Path

    @classmethod
    def current(cls) -> Home:
        return cls(home_dir())

    @property
    def registry_file(self) -> Path:
        return self.root / "registry.json"

    @property
    def experts_dir(self) -> Path:
        return self.root / "experts"

    @property
    def gates_dir(self) -> Path:
        return self.root / "gates"

    @property
    def foundations_dir(self) -> Path:
        return self.root / "foundations"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def volume_cache(self) -> Path:
        return self.cache_dir / "volumes"

    @property
    def gate_cache(self) -> Path:
        return self.cache_dir / "gate"

    @property
    def file_hashes(self) -> Path:
        return self.cache_dir / "file-hashes.json"

    def check_readable(self) -> None:
        """A home that exists must be a folder (a missing one is an empty state)."""
        try:
            if self.root.exists() and not self.root.is_dir():
                raise StateError(f"{ENV_VAR} {self.root} is a file, not a folder; point {ENV_VAR} at a folder")
        except PermissionError:
            raise StateError(
                f"{ENV_VAR} {self.root}: permission denied; point {ENV_VAR} at a folder you can read"
            ) from None

    def ensure_writable(self) -> None:
        """Create the home if needed; a home that cannot be written is a clear error."""
        self.check_readable()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StateError(
                f"{ENV_VAR} {self.root}: cannot create it ({e.strerror or e}); point {ENV_VAR} at a writable folder"
            ) from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StateError(f"{ENV_VAR} {self.root}: not writable; point {ENV_VAR} at a writable folder")
