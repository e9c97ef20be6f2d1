"""Local state under ``SAMMOE_HOME``: which experts are enabled, where each came from, the
chosen foundation and the current gate.

One JSON file (``registry.json``) is the whole state. Every change happens inside
:meth:`Registry.update`, which holds a file lock for the read-modify-write and replaces the
file atomically, so concurrent ``sammoe`` processes lose no change and a crash mid-write leaves
the previous state readable. Experts added from folders are copied to ``SAMMOE_HOME/experts/``.
Paths in the state (expert copies, the current gate) are stored relative to ``SAMMOE_HOME`` and
resolved inside it. Whether the gate is stale is not stored: it is computed from the gate's
manifest and the enabled experts (:mod:`sammoe_core.moe.gate_choice`).

Adding a folder expert is crash-safe: the entry is first written as *pending*, then the copy is
renamed into ``experts/<name>``, then the entry is committed; removing renames the folder aside
and drops the entry under one lock, then deletes the renamed folder. Whatever a kill leaves
(a pending entry, a folder without an entry, an entry without a folder, a staging folder),
:meth:`Registry.doctor` reports and repairs (``sammoe experts doctor [--fix]``).
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sammoe_core.errors import SammoeError, StateError
from sammoe_core.experts.expert import Expert, copy_expert_folder
from sammoe_core.files.atomic import write_text_atomic
from sammoe_core.home import Home, home_dir

LOCK_TIMEOUT_S = 120
STAGING_MAX_AGE_S = 600  # a staging folder older than this belongs to no running command


def sammoe_home() -> Path:
    """``$SAMMOE_HOME``, else the user's data folder for sammoe (platformdirs)."""
    return home_dir()


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExpertRecord(_Model):
    """What the registry knows of one expert; plugin experts without a record are enabled."""

    source: Literal["plugin", "folder", "hub"]
    origin: str | None = Field(None, description="pip requirement, original folder or Hub id")
    path: str | None = Field(None, description="its folder inside SAMMOE_HOME (folder and Hub experts)")
    plugin: str | None = Field(None, description="the plugin that provides it (plugin experts): it keeps the name")
    enabled: bool = True
    pending: bool = Field(False, description="an add in progress (or interrupted): its folder may be incomplete")


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
    def _drop_stored_staleness(cls, data: Any) -> Any:
        """States written before staleness was computed hold a ``gate_stale`` flag: ignored."""
        if isinstance(data, dict) and "gate_stale" in data:
            data = {k: v for k, v in data.items() if k != "gate_stale"}
        return data

    def disabled(self) -> set[str]:
        return {name for name, rec in self.experts.items() if not rec.enabled}


class Registry:
    """The state files of one ``SAMMOE_HOME`` (default: :func:`sammoe_home` at creation)."""

    def __init__(self, home: str | Path | None = None) -> None:
        self.layout = Home(Path(home) if home is not None else home_dir())
        self.home = self.layout.root

    @property
    def state_path(self) -> Path:
        return self.layout.registry_file

    @property
    def experts_dir(self) -> Path:
        return self.layout.experts_dir

    def read(self) -> RegistryState:
        """The current state (empty if none was written yet)."""
        self.layout.check_readable()
        try:
            text = self.state_path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return RegistryState()
        except UnicodeDecodeError:
            raise StateError(f"{self.state_path}: unreadable sammoe state (not UTF-8 text); fix or delete it") from None
        except OSError as e:
            raise StateError(f"{self.state_path}: unreadable ({e.strerror or e})") from None
        try:
            return RegistryState.model_validate(json.loads(text))
        except (json.JSONDecodeError, ValidationError, RecursionError, UnicodeDecodeError) as e:
            raise StateError(
                f"{self.state_path}: unreadable sammoe state ({type(e).__name__}); fix or delete it"
            ) from None

    @contextlib.contextmanager
    def update(self) -> Iterator[RegistryState]:
        """Lock, read, let the caller change the state, write it back atomically (not on error)."""
        from filelock import FileLock, Timeout

        self.layout.ensure_writable()
        lock = FileLock(str(self.state_path) + ".lock", timeout=LOCK_TIMEOUT_S)
        try:
            lock.acquire()
        except Timeout:
            raise StateError(f"{self.state_path}: locked by another sammoe process for {LOCK_TIMEOUT_S} s") from None
        except OSError as e:
            raise StateError(f"{self.state_path}.lock: cannot lock the state ({e.strerror or e})") from None
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
        """Copy an expert's folder into ``experts/<name>`` and record it; returns the copy's folder.

        Crash-safe: entry written as pending, folder renamed into place, entry committed. A folder
        left by an interrupted add (no committed entry) is replaced without ``overwrite``.

        Only regular files resolving inside the expert's folder are copied (:func:`copy_expert_folder`);
        with ``source="hub"`` the folder is a snapshot in the Hub cache, whose files are links into
        its repo's cache folder, so they must resolve inside that one."""
        destination = self.experts_dir / expert.name
        inside = None
        if source == "hub":
            from sammoe_core.hub.fetch import cached_repo_folder

            inside = cached_repo_folder(expert.folder)
        relative = destination.relative_to(self.home).as_posix()
        with self.update() as state:
            known = state.experts.get(expert.name)
            if known is not None and known.pending:
                raise StateError(
                    f"expert {expert.name!r} is being added by another sammoe process, or an add was interrupted: "
                    "`sammoe experts doctor --fix` repairs it"
                )
            if known is not None and not overwrite:
                raise SammoeError(
                    f"expert {expert.name!r} is already added ({known.source}); pass --overwrite to replace it"
                )
            previous = known
            state.experts[expert.name] = ExpertRecord(source=source, origin=origin, path=relative, pending=True)
        try:
            copy_expert_folder(expert, destination, overwrite=True, inside=inside)
        except BaseException:
            with self.update() as state:  # undo the intent: the state is as before
                if previous is None:
                    state.experts.pop(expert.name, None)
                else:
                    state.experts[expert.name] = previous
            raise
        with self.update() as state:
            state.experts[expert.name] = ExpertRecord(source=source, origin=origin, path=relative)
        return destination

    def record_plugin_experts(self, names: dict[str, str], origin: str) -> None:
        """Note the experts (name -> providing plugin) a pip install brought; the plugin keeps the name."""
        with self.update() as state:
            for name, plugin in names.items():
                record = state.experts.setdefault(name, ExpertRecord(source="plugin", origin=origin))
                if record.source == "plugin" and record.plugin is None:
                    record.plugin = plugin

    def owned_folder(self, name: str, record: ExpertRecord) -> Path:
        """The folder the registry made for expert ``name``: ``experts/<name>`` and nothing else
        (an entry naming another path is refused, so no state file can make sammoe delete it)."""
        if record.path is None or Path(record.path).as_posix() != f"experts/{name}":
            raise StateError(
                f"the registry's path for expert {name!r} is {record.path!r}, not 'experts/{name}': refusing to "
                "touch it (`sammoe experts doctor --fix` repairs the entry)"
            )
        return self.experts_dir / name

    def remove_expert(self, name: str) -> ExpertRecord:
        """Forget a folder or Hub expert and delete its copy (only ``experts/<name>``, which the
        registry made): the folder is renamed aside and the entry dropped under one lock, then
        the renamed folder is deleted."""
        import tempfile

        with self.update() as state:
            record = state.experts.get(name)
            if record is None or record.path is None:
                raise SammoeError(f"expert {name!r} was not added from a folder or the Hub; nothing to remove here")
            folder = self.owned_folder(name, record)
            doomed = None
            if folder.is_symlink():
                folder.unlink()
            elif folder.is_dir():
                doomed = Path(tempfile.mkdtemp(prefix=f".removing.{name}.", dir=self.experts_dir))
                folder.rename(doomed / name)
            del state.experts[name]
        if doomed is not None:
            shutil.rmtree(doomed, ignore_errors=True)
        return record

    def doctor(self, fix: bool = False) -> list[str]:
        """What interrupted commands left behind (and, with ``fix``, repairs it): pending entries
        (committed if their folder is a valid expert, else dropped), entries whose folder is gone,
        entries naming a path the registry never makes, folders in ``experts/`` without an entry,
        and staging folders older than ten minutes. Returns one line per finding."""
        import time

        findings: list[str] = []
        now = time.time()
        with self.update() if fix else contextlib.nullcontext(self.read()) as state:
            for name, record in list(state.experts.items()):
                if record.path is None:
                    continue
                if Path(record.path).as_posix() != f"experts/{name}":
                    findings.append(f"entry {name!r} names {record.path!r}, not experts/{name}: entry dropped")
                    if fix:
                        del state.experts[name]
                    continue
                folder = self.experts_dir / name
                usable = (folder / "expert.json").is_file() and _valid_expert(folder)
                if record.pending:
                    findings.append(
                        f"entry {name!r} is pending (an interrupted add): "
                        + ("committed, its folder is complete" if usable else "dropped")
                    )
                    if fix:
                        if usable:
                            record.pending = False
                        else:
                            del state.experts[name]
                            shutil.rmtree(folder, ignore_errors=True)
                elif not folder.is_dir():
                    findings.append(f"entry {name!r}: its folder experts/{name} is gone: entry dropped")
                    if fix:
                        del state.experts[name]
            known = {n for n, r in state.experts.items() if r.path is not None}
            if self.experts_dir.is_dir():
                for path in sorted(self.experts_dir.iterdir()):
                    if path.name.startswith("."):
                        if now - path.stat().st_mtime > STAGING_MAX_AGE_S:
                            findings.append(f"stale staging folder experts/{path.name}: removed")
                            if fix:
                                shutil.rmtree(path, ignore_errors=True)
                    elif path.name not in known:
                        findings.append(
                            f"folder experts/{path.name} has no registry entry (an interrupted add): removed"
                        )
                        if fix:
                            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
        return findings

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
        from sammoe_core.files.safe_paths import resolve_inside

        folder = resolve_inside(self.home, path, "gate folder")
        relative = folder.relative_to(self.home.resolve()).as_posix()
        with self.update() as state:
            state.gate = GateRecord(path=relative, experts=tuple(sorted(experts)), foundation_sha256=foundation_sha256)


def _valid_expert(folder: Path) -> bool:
    """Whether ``folder`` holds a readable expert whose weights match their manifest."""
    try:
        return Expert.from_folder(folder).integrity_problem() is None
    except SammoeError:
        return False
