"""Adding, removing, enabling and describing experts (what ``sammoe add-expert`` and
``sammoe experts ...`` do).

A SOURCE that is a folder holding ``expert.json``, or a Hub repo ``hf://ORG/NAME[@REVISION]``
(fetched into the local Hub cache first), is checked in full and copied into SAMMOE_HOME;
anything else (a pip requirement, a plugin project folder, a wheel) is installed by
pip for this very interpreter, as ``llm install`` does, and the experts its plugin registers
become available. Every change of the expert set marks the gate stale.
"""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sammoe_core.errors import SammoeError
from sammoe_core.experts.catalog import available_experts, get_expert
from sammoe_core.experts.expert import Expert, ExpertSource
from sammoe_core.experts.manifest import MANIFEST_FILE
from sammoe_core.experts.registry import Registry


@dataclass
class AddResult:
    """What an add brought: the kind of source, the new expert names, plugin problems seen."""

    source: str
    kind: str
    experts: list[str]
    problems: list[str] = field(default_factory=list)


def check_expert(expert: Expert) -> None:
    """Every check an expert can get without its foundation: manifest (already read), sammoe
    version, weights sha256 and content, header against manifest, tensor names and shapes,
    calibration folder layout. Raises :class:`SammoeError` at the first problem."""
    too_old = expert.manifest.sammoe_version_problem()
    if too_old:
        raise SammoeError(too_old)
    expert.load_delta()
    cal = expert.calibration_dir
    if cal is not None:
        missing = [p for p in ("dataset.json", "images", "labels") if not (cal / p).exists()]
        if missing:
            raise SammoeError(f"{cal}: calibration set lacks {', '.join(missing)}")


def _foundation_in_use() -> str | None:
    from sammoe_core.experts.foundations import NoFoundation, resolve_foundation

    try:
        return resolve_foundation().sha256
    except NoFoundation:
        return None


def _check_and_copy(expert: Expert, origin: str, source: Literal["folder", "hub"], overwrite: bool) -> None:
    """Check an expert in full (and against the foundation in use), then copy it into SAMMOE_HOME."""
    check_expert(expert)
    in_use = _foundation_in_use()
    if in_use is not None:  # with no foundation chosen yet, the check happens when the expert is used
        expert.check_foundation(in_use)
    existing = available_experts().get(expert.name)
    if existing is not None and existing.source.kind == "plugin":
        raise SammoeError(f"expert {expert.name!r} is already provided by {existing.source.describe()}")
    Registry().add_folder_expert(expert, origin=origin, source=source, overwrite=overwrite)


def add_expert_folder(folder: str | Path, overwrite: bool = False) -> AddResult:
    """Check an expert folder (manifest + weights) and copy it into SAMMOE_HOME."""
    folder = Path(folder).resolve()
    expert = Expert.from_folder(folder)
    _check_and_copy(expert, str(folder), "folder", overwrite)
    return AddResult(str(folder), "folder", [expert.name])


def add_hub_expert(uri: str, overwrite: bool = False, progress: bool = False) -> AddResult:
    """Fetch an expert repo (``hf://ORG/NAME[@REVISION]``; from the local Hub cache when offline),
    check it like a folder and copy it into SAMMOE_HOME. Afterwards it is an expert like any other."""
    from sammoe_core.hub.fetch import fetch_expert
    from sammoe_core.hub.location import parse_hub_uri

    ref = parse_hub_uri(uri, want_path=False)
    folder = fetch_expert(ref, progress=progress)
    expert = Expert.from_folder(folder, ExpertSource("hub", origin=ref.uri))
    _check_and_copy(expert, ref.uri, "hub", overwrite)
    return AddResult(ref.uri, "hub", [expert.name])


def run_pip(args: list[str]) -> None:
    """Run ``python -m pip ARGS`` with sammoe's own interpreter, pip's output on stderr so stdout
    stays sammoe's; a failure is a :class:`SammoeError`.

    pip runs in a child process: since pip 26.3 an in-process install (``runpy``, as llm does)
    blocks every later import in the process, and sammoe must import the new plugin afterwards.
    """
    try:
        err = sys.stderr.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        err = None  # stderr is not a file (tests, notebooks): pass pip's output on afterwards
    done = subprocess.run(
        [sys.executable, "-m", "pip", *args],
        stdout=subprocess.PIPE if err is None else err,
        stderr=subprocess.STDOUT if err is None else None,
        text=True,
        check=False,
    )
    if err is None and done.stdout:
        sys.stderr.write(done.stdout)
    if done.returncode:
        raise SammoeError(f"pip {' '.join(args)}: failed (exit {done.returncode}); see pip's message above")


def add_expert_package(requirement: str, upgrade: bool = False, editable: bool = False) -> AddResult:
    """pip-install a plugin (requirement, project folder or wheel) and record the experts it brings.

    An installed plugin whose experts did not register (a name another plugin holds, an invalid
    manifest) is an error that names the problem: the package stays installed (pip uninstall
    removes it) but nothing is recorded for it."""
    from sammoe_core.plugins.host import PluginHost

    before_host = PluginHost().load()
    before = set(available_experts(before_host))
    plugins_before = {row["name"] for row in before_host.plugins()}
    run_pip(["install", *(["-U"] if upgrade else []), *(["-e"] if editable else []), requirement])
    importlib.invalidate_caches()
    host = PluginHost().load()
    experts = available_experts(host)
    new = {name: e.source.plugin or "" for name, e in experts.items() if name not in before}
    Registry().record_plugin_experts(new, origin=requirement)
    problems = [f"{p.plugin}: {p}" for p in host.problems]
    arrived = {row["name"] for row in host.plugins()} - plugins_before
    refused = [f"{p.plugin}: {p}" for p in host.problems if p.plugin in arrived and p.stage == "register_experts"]
    if refused and not new:
        raise SammoeError(
            f"{requirement}: installed, but its experts did not register ({'; '.join(refused)}); "
            "`pip uninstall` it, or rename its expert"
        )
    return AddResult(requirement, "pip", sorted(new), problems)


def add_expert(
    source: str, upgrade: bool = False, editable: bool = False, overwrite: bool = False, progress: bool = False
) -> AddResult:
    """An expert folder or Hub repo (``hf://...``) is copied into SAMMOE_HOME; anything else goes
    to pip (see module doc). ``progress``: show download progress bars (Hub)."""
    from sammoe_core.hub.location import is_hub_uri

    if is_hub_uri(source):
        if upgrade or editable:
            raise SammoeError(f"{source}: -U and -e apply to plugin packages, not to Hub experts")
        return add_hub_expert(source, overwrite=overwrite, progress=progress)
    path = Path(source)
    if path.is_dir() and (path / MANIFEST_FILE).is_file():
        if upgrade or editable:
            raise SammoeError(f"{source}: -U and -e apply to plugin packages, not to expert folders")
        return add_expert_folder(path, overwrite=overwrite)
    if path.is_dir() and not any((path / f).is_file() for f in ("pyproject.toml", "setup.py", "setup.cfg")):
        raise SammoeError(f"{source}: neither an expert folder ({MANIFEST_FILE}) nor a Python project")
    return add_expert_package(source, upgrade=upgrade, editable=editable)


def remove_expert(name: str) -> None:
    """Delete an expert added as a folder; plugin experts are removed with pip."""
    registry = Registry()
    record = registry.read().experts.get(name)
    if record is None or record.path is None:
        source = get_expert(name).source
        raise SammoeError(
            f"expert {name!r} comes from {source.describe()}: `pip uninstall {source.distribution or source.plugin}` "
            f"removes it, `sammoe experts disable {name}` keeps it installed but unused"
        )
    registry.remove_expert(name)


def set_expert_enabled(name: str, enabled: bool) -> bool:
    """Enable or disable an available expert; returns whether its state changed."""
    return Registry().set_enabled(name, enabled, get_expert(name).source.kind)


def describe_expert(expert: Expert, enabled: bool, foundation_sha256: str | None, full: bool = False) -> dict[str, Any]:
    """A JSON-able summary of an expert (``full``: the whole manifest and its tensor names).
    ``fits_foundation``: whether it was made on the foundation in use (None: no foundation)."""
    fits = None if foundation_sha256 is None else expert.manifest.foundation.sha256 == foundation_sha256
    problem = expert.integrity_problem()
    row: dict[str, Any] = {
        "name": expert.name,
        "version": expert.manifest.version,
        "enabled": enabled,
        "weights_ok": problem is None,
        **({"weights_problem": problem} if problem else {}),
        "source": expert.source.describe(),
        "targets": [t.name for t in expert.manifest.targets],
        "modality": expert.manifest.modality,
        "foundation_sha256": expert.manifest.foundation.sha256,
        "fits_foundation": fits,
        "folder": str(expert.folder),
    }
    if full:
        row["overrides_encoder"] = expert.overrides_encoder
        row["tensors"] = expert.weights.keys()
        row["manifest"] = expert.manifest.model_dump(mode="json", exclude_none=True)
    return row


def describe_experts() -> list[dict[str, Any]]:
    disabled, in_use = Registry().read().disabled(), _foundation_in_use()
    return [describe_expert(e, name not in disabled, in_use) for name, e in available_experts().items()]


def verify_experts(name: str | None = None) -> list[dict[str, Any]]:
    """Every check an expert can get, in full (``sammoe experts verify``): manifest, weights sha256
    and content digest, header against manifest, tensor names and shapes, calibration layout, and
    the foundation in use. One row per expert: ``ok`` and the first ``problem``."""
    experts = available_experts() if name is None else {name: get_expert(name)}
    in_use = _foundation_in_use()
    rows = []
    for expert_name, expert in experts.items():
        try:
            check_expert(expert)
            if in_use is not None:
                expert.check_foundation(in_use)
        except (SammoeError, OSError) as e:
            rows.append({"name": expert_name, "ok": False, "problem": str(e)})
        else:
            rows.append({"name": expert_name, "ok": True})
    return rows


def show_expert(name: str) -> dict[str, Any]:
    disabled = Registry().read().disabled()
    return describe_expert(get_expert(name), name not in disabled, _foundation_in_use(), full=True)
