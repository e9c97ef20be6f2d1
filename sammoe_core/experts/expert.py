"""One expert: its manifest, the folder it lives in, where it came from, its weights (lazy).

Creating an :class:`Expert` reads only the manifest; the weights are opened, hashed and checked
the first time :meth:`Expert.load_delta` or :meth:`Expert.build` runs.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sammoe_core.errors import SammoeError, WeightsError
from sammoe_core.experts.manifest import (
    MANIFEST_FILE,
    WEIGHTS_FILE,
    ExpertManifest,
    WeightsRef,
    read_manifest,
    validate_manifest,
    write_manifest,
)
from sammoe_core.experts.weights import ExpertWeights, part_prefixes, save_delta
from sammoe_core.files.atomic import atomic_folder

if TYPE_CHECKING:
    import torch

    from sammoe_core.model import Sam3D, SamConfig


class FoundationMismatch(WeightsError):
    """The expert was finetuned from another foundation than the one it is asked to run on."""


@dataclass(frozen=True)
class ExpertSource:
    """Where an expert comes from: a plugin (entry point), a folder copied into SAMMOE_HOME, the Hub."""

    kind: Literal["plugin", "folder", "hub"]
    plugin: str | None = None
    distribution: str | None = None
    version: str | None = None
    origin: str | None = None

    def describe(self) -> str:
        if self.kind == "plugin":
            if self.distribution is None:
                return f"plugin {self.plugin}"
            name = self.plugin if self.distribution == self.plugin else f"{self.plugin} ({self.distribution})"
            return f"plugin {name} {self.version}"
        return f"{self.kind} {self.origin}" if self.origin else self.kind


class Expert:
    """An expert: manifest + folder + source, with its delta weights opened on demand."""

    def __init__(self, manifest: ExpertManifest, folder: str | Path, source: ExpertSource) -> None:
        self.manifest = manifest
        self.folder = Path(folder)
        self.source = source
        self.weights = ExpertWeights(self.folder / manifest.weights.file, manifest.weights.sha256)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike[str], source: ExpertSource | None = None) -> Expert:
        """Read ``folder/expert.json`` (validated); nothing else is read yet."""
        folder = Path(folder)
        return cls(read_manifest(folder / MANIFEST_FILE), folder, source or ExpertSource("folder", origin=str(folder)))

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def overrides_encoder(self) -> bool:
        """Whether this expert needs its own image-encoder pass (read from the weights header)."""
        return self.weights.overrides_encoder

    @property
    def calibration_dir(self) -> Path | None:
        cal = self.manifest.calibration
        return None if cal is None else self.folder / cal.path

    def __repr__(self) -> str:
        return f"Expert({self.name!r} {self.manifest.version}, {self.source.describe()})"

    def integrity_problem(self) -> str | None:
        """A cheap check of the weights file: present, and its sha256 (remembered by size and
        mtime, so an unchanged file is not read again) the manifest's. None when it is intact;
        else what is wrong. :meth:`load_delta` and ``sammoe experts verify`` check everything."""
        from sammoe_core.files.hashing import cached_sha256, file_hash_cache

        path = self.weights.path
        try:
            if not path.is_file():
                return f"expert {self.name!r}: weights file {path} is missing"
            actual = cached_sha256(path, file_hash_cache())
        except OSError as e:
            return f"expert {self.name!r}: weights file {path} is unreadable ({e.strerror or e})"
        if actual != self.manifest.weights.sha256:
            return (
                f"expert {self.name!r}: weights file {path} is damaged (sha256 {actual[:12]}..., "
                f"the manifest says {self.manifest.weights.sha256[:12]}...)"
            )
        return None

    def check_foundation(self, foundation_sha256: str) -> None:
        """Refuse a foundation other than the one the expert was finetuned from."""
        want = self.manifest.foundation.sha256
        if foundation_sha256 != want:
            raise FoundationMismatch(
                f"expert {self.name!r} was finetuned from foundation {want} "
                f"({self.manifest.foundation.config}) but the foundation in use is {foundation_sha256}; "
                "use the foundation it was built on, or an expert built on this one"
            )

    def load_delta(self, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        """The delta tensors, after every check: file sha256, content digest, header against
        manifest (foundation hash, config), tensor names within ``overrides``, shapes."""
        state = self.weights.load(device)
        meta, where = self.weights.metadata, self.weights.path
        found_sha = meta.get("sammoe_foundation_sha256")
        if found_sha != self.manifest.foundation.sha256:
            raise FoundationMismatch(
                f"{where}: weights were made on foundation {found_sha} but the manifest names "
                f"{self.manifest.foundation.sha256}"
            )
        if meta.get("sammoe_config") != self.manifest.foundation.config:
            raise SammoeError(
                f"{where}: weights are for config {meta.get('sammoe_config')!r}, the manifest says "
                f"{self.manifest.foundation.config!r}"
            )
        undeclared = [k for k in sorted(state) if not self.manifest.overrides_tensor(k)]
        if undeclared:
            raise SammoeError(f"{where}: tensors not covered by the manifest's overrides: {', '.join(undeclared[:8])}")
        if not state:
            raise SammoeError(f"{where}: holds no tensor")
        return state

    def build(self, foundation: Sam3D, foundation_sha256: str) -> Sam3D:
        """The expert's network: its delta over ``foundation`` (whose weights file has that sha256)."""
        from sammoe_core.experts.weights import compose

        self.check_foundation(foundation_sha256)
        return compose(foundation, self.load_delta(foundation.device))


def save_expert(
    folder: str | Path,
    delta: Mapping[str, torch.Tensor],
    config: SamConfig,
    foundation_sha256: str,
    parts: str | Sequence[str],
    overwrite: bool = False,
    **manifest_fields: Any,
) -> Expert:
    """Write an expert folder: ``model.safetensors`` (the delta) + ``expert.json``.

    ``manifest_fields`` are the :class:`ExpertManifest` fields a person chooses (name, version,
    description, targets, modality, license, authors, min_sammoe_version, preprocessing,
    calibration, evaluation; ``foundation`` may add a ``hub_id``); the weights reference, the
    foundation hash and config and ``overrides`` (from ``parts``) are filled in here.
    """
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()) and not overwrite:
        raise SammoeError(f"{folder}: exists and is not empty (pass --overwrite to replace it)")
    foundation = {"hub_id": None, **manifest_fields.pop("foundation", {})}
    foundation.update(config=config.name, sha256=foundation_sha256)
    draft = {**manifest_fields, "foundation": foundation, "overrides": part_prefixes(parts)}
    # Validate before writing anything; the weights hash is filled in once the file exists.
    validate_manifest({**draft, "weights": WeightsRef(sha256="0" * 64)}, str(folder / MANIFEST_FILE))
    folder.mkdir(parents=True, exist_ok=True)
    sha = save_delta(delta, folder / WEIGHTS_FILE, config, foundation_sha256, overwrite=overwrite)
    manifest = validate_manifest({**draft, "weights": WeightsRef(sha256=sha)}, str(folder / MANIFEST_FILE))
    write_manifest(manifest, folder / MANIFEST_FILE, overwrite=overwrite)
    return Expert(manifest, folder, ExpertSource("folder", origin=str(folder)))


def copy_expert_folder(
    expert: Expert,
    destination: Path,
    overwrite: bool = False,
    extra_files: Mapping[str, str] | None = None,
    inside: Path | None = None,
) -> None:
    """Copy the files an expert needs (manifest, weights, calibration set) to ``destination``,
    plus ``extra_files`` (name -> text, e.g. a model card).

    Only regular files are copied, and each must resolve (symlinks followed) inside ``inside``:
    by default the expert folder; a Hub snapshot's files are links into its repo's cache folder,
    which the caller passes. A symlink, to a file or a folder, that points outside is an
    :class:`~sammoe_core.files.safe_paths.PathEscapeError` (an :class:`InputError`) naming the link; one
    that stays inside is followed, and the copy holds the regular files it points to, never a link.
    Anything else (a missing or special file, a folder linking back to one it is in) is an
    :class:`InputError` too. Every file is checked before anything is written.

    The copy is made beside it under a temporary name and renamed into place, so a failed copy
    never leaves a half expert (nor, with ``overwrite``, loses the previous one).
    """
    from sammoe_core.errors import InputError
    from sammoe_core.files.safe_paths import resolve_inside

    root = (expert.folder if inside is None else inside).absolute()
    label = f"expert {expert.name!r}:"

    def regular_file(path: Path, what: str) -> Path:
        real = resolve_inside(root, path.absolute(), f"{label} {what}")
        if not real.is_file():
            problem = "is not a regular file" if real.exists() else "is missing"
            raise InputError(f"{label} {what} {str(path)!r} {problem}")
        return real

    files = {  # name in the copy -> the regular file copied there
        Path(MANIFEST_FILE): regular_file(expert.folder / MANIFEST_FILE, "manifest"),
        Path(expert.manifest.weights.file): regular_file(expert.weights.path, "weights file"),
    }
    folders: list[Path] = []
    if expert.manifest.calibration is not None:
        pending: list[tuple[Path, tuple[Path, ...]]] = [(Path(expert.manifest.calibration.path), ())]
        while pending:  # the calibration set, depth first; ``above``: the real folders it is in
            name, above = pending.pop()
            source = expert.folder / name
            real = resolve_inside(root, source.absolute(), f"{label} calibration path")
            if not real.is_dir():
                files[name] = regular_file(source, "calibration file")
            elif real in above:
                raise InputError(f"{label} calibration folder {str(source)!r} links back to a folder it is in")
            else:
                folders.append(name)
                pending += [(name / child.name, (*above, real)) for child in sorted(source.iterdir())]

    if destination.exists() and not overwrite:
        raise SammoeError(f"{destination}: exists (pass --overwrite to replace it)")
    with atomic_folder(destination, overwrite=overwrite) as staging:
        for name in folders:
            (staging / name).mkdir(parents=True, exist_ok=True)
        for name, real in files.items():
            shutil.copy2(real, staging / name)
        for file_name, text in (extra_files or {}).items():
            (staging / file_name).write_text(text, encoding="utf-8")
