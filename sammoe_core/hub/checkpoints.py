"""Foundation weights from the Hub: ``sammoe foundation set hf://ORG/REPO[@REV]/FILE.pth``.

The file is fetched into the local Hub cache (:mod:`.fetch`), then converted once to a sammoe
safetensors file (``convert_checkpoint``: weights-only loading, strict key and shape checks)
kept under ``SAMMOE_HOME/foundations/ORG--REPO/COMMIT/``; later calls find the conversion there.
A ``.safetensors`` file already in sammoe's format is copied there as it is. Conversion is
reproducible, so everyone converting the same checkpoint gets the same sha256, the identity
experts are checked against. The file read is always one inside the Hub cache, and the one
written always lands inside ``SAMMOE_HOME/foundations``, whatever the reference says.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from sammoe_core.errors import SammoeError
from sammoe_core.files.atomic import atomic_output
from sammoe_core.files.safe_paths import resolve_inside
from sammoe_core.hub.fetch import fetch_file
from sammoe_core.hub.location import HubRef
from sammoe_core.hub.settings import HubSettings

if TYPE_CHECKING:
    from sammoe_core.experts.foundations import FoundationSpec

FOUNDATIONS_DIR = "foundations"
CHECKPOINT_SUFFIXES = (".pth", ".pt")


def converted_path(home: Path, ref: HubRef, commit: str) -> Path:
    """Where the sammoe safetensors made from ``ref`` at ``commit`` is kept (resolved; a
    :class:`~sammoe_core.files.safe_paths.PathEscapeError` if that is not inside ``home/foundations``)."""
    relative = Path(ref.repo_id.replace("/", "--"), commit, f"{Path(ref.path).stem}.safetensors")
    return resolve_inside(home / FOUNDATIONS_DIR, relative, f"{ref.uri}: the converted foundation")


def _local_alternative(ref: HubRef) -> str:
    name = Path(ref.path).name
    if name.endswith(".safetensors"):
        return f"sammoe foundation set ./{name}"
    return f"sammoe convert {name} foundation.safetensors && sammoe foundation set foundation.safetensors"


def _copy_sammoe_safetensors(source: Path, target: Path, ref: HubRef) -> None:
    from sammoe_core.experts.weights import read_header

    _, meta = read_header(source)
    if "sammoe_config" not in meta:
        raise SammoeError(
            f"{ref.uri}: not a sammoe safetensors file (no sammoe config in its header); use the "
            "official .pth checkpoint, which sammoe converts itself"
        )
    with atomic_output(target, overwrite=True) as tmp:
        shutil.copyfile(source, tmp)


def fetch_foundation(
    ref: HubRef,
    config: str | None = None,
    settings: HubSettings | None = None,
    home: Path | None = None,
    progress: bool = False,
) -> FoundationSpec:
    """The foundation in file ``ref`` as a sammoe weights file (fetched, converted once, cached),
    described with its Hub id. ``config``: the network config of a ``.pth`` (default: detected)."""
    from sammoe_core.experts.foundations import FoundationSpec
    from sammoe_core.experts.registry import sammoe_home
    from sammoe_core.experts.weights import read_header

    suffix = Path(ref.path).suffix
    if suffix not in (*CHECKPOINT_SUFFIXES, ".safetensors"):
        raise SammoeError(f"{ref.uri}: foundation weights are a .pth checkpoint or a sammoe .safetensors file")
    source, commit = fetch_file(
        ref, f"sammoe foundation set {ref.uri}", _local_alternative(ref), settings=settings, progress=progress
    )
    target = converted_path(home or sammoe_home(), ref, commit)
    stale = target.is_file() and config is not None and read_header(target)[1].get("sammoe_config") != config
    if not target.is_file() or stale:
        target.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".safetensors":
            _copy_sammoe_safetensors(source, target, ref)
        else:
            from sammoe_core.model.checkpoint import convert_checkpoint

            convert_checkpoint(source, target, config=config, overwrite=True)
    spec = FoundationSpec.from_file(target, name=Path(ref.path).stem)
    return spec.model_copy(update={"hub_id": ref.repo_id})
