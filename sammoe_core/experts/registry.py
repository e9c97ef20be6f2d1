"""Local state under ``SAMMOE_HOME``: which experts are enabled, where each came from, the
chosen foundation and the current gate.

One JSON file (``registry.json``) is the whole state. Every change happens inside
:meth:`Registry.update`, which holds a file lock for the read-modify-write and replaces the
file atomically, so concurrent ``sammoe`` processes lose no change and a crash mid-write leaves
the previous state readable. Experts added from folders are copied to ``SAMMOE_HOME/experts/``.
Paths in the state (expert copies, the current gate) are stored relative to ``SAMMOE_HOME`` and
resolved inside it. Whether the gate is stale is not stored: it is computed from the gate's
manifest and the enabled experts (:mod:`sammoe_core.moe.gate_choice`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..atomic import write_text_atomic
from ..errors import SammoeError
from .expert import Expert, copy_expert_folder

STATE_FILE = "registry.json"
LOCK_TIMEOUT_S = 120


def sammoe_home() -> Path:
    """``$SAMMOE_HOME``, else the user's data folder for sammoe (platformdirs)."""
    env = os.environ.get("SAMMOE_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("sammoe"))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExpertRecord(_Model):
    """What the registry knows of one expert; plugin experts without a record are enabled."""

    source: Literal["plugin", "folder", "hub"]
    origin: str | None = Field(None, description="pip requirement, original folder or Hub id")
    path: str | None = Field(None, description="its folder inside SAMMOE_HOME (folder and Hub experts)")
    plugin: str | None = Field(None, description="the plugin that provides it (plugin experts): it keeps the name")
    enabled: bool = True


class FoundationChoice(_Model):
    """The chosen foundation: a registered name, or a weights file (with its config and sha256,
    and the Hub repo it came from, if it did)."""

    name: str
    path: str | None = None
    config: str | None = None
    sha256: str | None = None
    hub_id: str | None = None


class GateRecord(_Model):
    path: str = Field(description="the gate's folder, relative to SAMMOE_HOME")
    experts: tuple[str, ...]
    foundation_sha256: str | None = None


class RegistryState(_Model):
    state_version: Literal[1] = 1
    experts: dict[str, ExpertRecord] = {}
    foundation: FoundationChoice | None = None
    gate: GateRecord | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_stored_staleness(cls, data):
        """States written before staleness was computed hold a ``gate_stale`` flag: ignored."""
        if isinstance(data, dict) and "gate_stale" in data:
            data = {k: v for k, v in data.items() if k != "gate_stale"}
        return data

    def disabled(self) -> set[str]:
        return {name for name, rec in self.experts.items() if not rec.enabled}


class Registry:
    """The state files of one ``SAMMOE_HOME`` (default: :func:`sammoe_home` at creation)."""

    def __init__(self, home: str | Path | None = None) -> None:
        self.home = Path(home) if home is not None else sammoe_home()

    @property
    def state_path(self) -> Path:
        return self.home / STATE_FILE

    @property
    def experts_dir(self) -> Path:
        return self.home / "experts"

    def read(self) -> RegistryState:
        """The current state (empty if none was written yet)."""
        try:
            text = self.state_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return RegistryState()
        try:
            return RegistryState.model_validate(json.loads(text))
        except (json.JSONDecodeError, ValidationError) as e:
            raise SammoeError(
                f"{self.state_path}: unreadable sammoe state ({type(e).__name__}); fix or delete it"
            ) from None

    @contextlib.contextmanager
    def update(self) -> Iterator[RegistryState]:
        """Lock, read, let the caller change the state, write it back atomically (not on error)."""
        from filelock import FileLock, Timeout

        self.home.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.state_path) + ".lock", timeout=LOCK_TIMEOUT_S)
        try:
            lock.acquire()
        except Timeout:
            raise SammoeError(f"{self.state_path}: locked by another sammoe process for {LOCK_TIMEOUT_S} s") from None
        try:
            state = self.read()
            yield state
            write_text_atomic(self.state_path, state.model_dump_json(indent=2) + "\n", overwrite=True)
        finally:
            lock.release()

    # --- experts -------------------------------------------------------------------------------

    def add_folder_expert(
        self, expert: Expert, origin: str, source: Literal["folder", "hub"] = "folder", overwrite: bool = False
    ) -> Path:
        """Copy an expert's folder into ``experts/<name>`` and record it; returns the copy's folder."""
        destination = self.experts_dir / expert.name
        with self.update() as state:
            known = state.experts.get(expert.name)
            if known is not None and not overwrite:
                raise SammoeError(
                    f"expert {expert.name!r} is already added ({known.source}); pass --overwrite to replace it"
                )
            copy_expert_folder(expert, destination, overwrite=overwrite)
            state.experts[expert.name] = ExpertRecord(
                source=source, origin=origin, path=destination.relative_to(self.home).as_posix()
            )
        return destination

    def record_plugin_experts(self, names: dict[str, str], origin: str) -> None:
        """Note the experts (name -> providing plugin) a pip install brought; the plugin keeps the name."""
        with self.update() as state:
            for name, plugin in names.items():
                record = state.experts.setdefault(name, ExpertRecord(source="plugin", origin=origin))
                if record.source == "plugin" and record.plugin is None:
                    record.plugin = plugin

    def remove_expert(self, name: str) -> ExpertRecord:
        """Forget a folder or Hub expert and delete its copy."""
        with self.update() as state:
            record = state.experts.get(name)
            if record is None or record.path is None:
                raise SammoeError(f"expert {name!r} was not added from a folder or the Hub; nothing to remove here")
            shutil.rmtree(self.home / record.path, ignore_errors=True)
            del state.experts[name]
        return record

    def set_enabled(self, name: str, enabled: bool, source: Literal["plugin", "folder", "hub"]) -> bool:
        """Enable or disable an expert; returns whether anything changed."""
        with self.update() as state:
            record = state.experts.setdefault(name, ExpertRecord(source=source))
            changed = record.enabled != enabled
            record.enabled = enabled
        return changed

    # --- foundation and gate -------------------------------------------------------------------

    def choose_foundation(self, choice: FoundationChoice) -> None:
        with self.update() as state:
            state.foundation = choice

    def set_gate(self, path: str | Path, experts: list[str], foundation_sha256: str | None) -> None:
        """Record a freshly trained gate (a folder inside ``SAMMOE_HOME``) as the current one."""
        from ..safe_paths import resolve_inside

        folder = resolve_inside(self.home, path, "gate folder")
        relative = folder.relative_to(self.home.resolve()).as_posix()
        with self.update() as state:
            state.gate = GateRecord(path=relative, experts=tuple(sorted(experts)), foundation_sha256=foundation_sha256)
