"""``bundle.json``: the one manifest of a bundle, naming every file it holds and its sha256.

A bundle folder holds the foundation's weights, each expert's folder (``expert.json``, its delta,
its calibration set) and the gate (``gate.json`` + weights). The manifest names where each part
is and the sha256 of every file; :func:`verify_bundle_files` checks that the folder holds exactly
those files (nothing missing, nothing added) with exactly those hashes before anything is loaded.
Every path in it is data: it is resolved and must stay inside the bundle folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from sammoe_core.errors import InputError, WeightsError
from sammoe_core.experts.manifest import SHA256, SLUG
from sammoe_core.files.hashing import sha256_file
from sammoe_core.files.safe_paths import resolve_inside

BUNDLE_MANIFEST = "bundle.json"
BUNDLE_FORMAT = "sammoe-bundle"
RELATIVE_PATH = r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*$"  # and no '.' or '..' part (_relative)
MAX_FILES = 10_000


def _matches(pattern: str, text: str) -> bool:
    return re.fullmatch(pattern, text) is not None


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _relative(path: str) -> str:
    """A path inside the bundle: relative, '/'-separated, no '.' or '..' part."""
    if not _matches(RELATIVE_PATH, path) or any(part in (".", "..") for part in path.split("/")):
        raise ValueError(f"{path!r} is not a relative path inside the bundle")
    return path


InsidePath = Annotated[str, Field(max_length=500), AfterValidator(_relative)]


class BundleFoundation(_Strict):
    name: str = Field(min_length=1, max_length=200)
    config: str = Field(min_length=1, max_length=128)
    file: InsidePath
    hub_id: str | None = None


class BundleExpert(_Strict):
    name: str = Field(pattern=SLUG, max_length=64)
    version: str = Field(min_length=1, max_length=64)
    folder: InsidePath


class BundleGate(_Strict):
    folder: InsidePath


class BundleManifest(_Strict):
    format: str = Field(BUNDLE_FORMAT, pattern=f"^{BUNDLE_FORMAT}$")
    bundle_version: int = Field(1, ge=1, le=1)
    sammoe_version: str = Field(min_length=1, max_length=64)
    foundation: BundleFoundation
    experts: tuple[BundleExpert, ...] = ()
    gate: BundleGate | None = None
    files: dict[str, str] = Field(min_length=1, description="every file of the bundle -> its sha256")

    @model_validator(mode="after")
    def _consistent(self) -> BundleManifest:
        for path, sha in self.files.items():
            _relative(path)
            if not _matches(SHA256, sha):
                raise ValueError(f"files: {path!r} has no sha256 (64 hex digits)")
        if len(self.files) > MAX_FILES:
            raise ValueError(f"files: {len(self.files)} entries (at most {MAX_FILES})")
        if self.foundation.file not in self.files:
            raise ValueError(f"foundation.file {self.foundation.file!r} is not among the files")
        names = [e.name for e in self.experts]
        if len(set(names)) != len(names):
            raise ValueError("experts: a name appears twice")
        if self.experts and self.gate is None:
            raise ValueError("experts without a gate (a bundle carries the gate trained for its experts)")
        return self

    def expert_names(self) -> list[str]:
        return [e.name for e in self.experts]


def read_bundle_manifest(folder: str | Path) -> BundleManifest:
    """Read and validate ``folder/bundle.json``; every problem is a one-line error naming it."""
    from sammoe_core.files.json_models import read_json_model

    if not Path(folder).is_dir():
        raise InputError(f"{folder}: no bundle here (not a folder; `sammoe bundle OUT` writes one)")
    missing = "no bundle manifest here (`sammoe bundle OUT` writes one)"
    return read_json_model(Path(folder) / BUNDLE_MANIFEST, BundleManifest, "bundle manifest", missing, InputError)


def bundle_files(folder: Path) -> list[str]:
    """Every file under ``folder`` except the manifest, as sorted POSIX paths relative to it."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in files:
            relative = (Path(root) / name).relative_to(folder).as_posix()
            if relative != BUNDLE_MANIFEST:
                found.append(relative)
    return sorted(found)


def verify_bundle_files(folder: Path, manifest: BundleManifest) -> None:
    """The folder holds exactly the manifest's files (resolved inside it), each with its sha256."""
    on_disk = set(bundle_files(folder))
    missing = sorted(set(manifest.files) - on_disk)
    if missing:
        raise WeightsError(f"bundle {folder}: file {missing[0]} named in {BUNDLE_MANIFEST} is missing")
    extra = sorted(on_disk - set(manifest.files))
    if extra:
        raise WeightsError(f"bundle {folder}: file {extra[0]} is not named in {BUNDLE_MANIFEST} (added after writing?)")
    for relative, want in sorted(manifest.files.items()):
        path = resolve_inside(folder, relative, f"{BUNDLE_MANIFEST} file")
        if not path.is_file():
            raise WeightsError(f"bundle {folder}: {relative} is not a regular file")
        actual = sha256_file(path)
        if actual != want:
            raise WeightsError(
                f"bundle {folder}: {relative} is damaged or tampered with (sha256 {actual[:12]}..., "
                f"{BUNDLE_MANIFEST} says {want[:12]}...)"
            )
