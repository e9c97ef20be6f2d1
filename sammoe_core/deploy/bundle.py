"""The merged MoE as one file set: ``sammoe bundle OUT`` writes it, ``segment --bundle OUT`` runs it.

A bundle holds the foundation in use, every enabled expert's folder (manifest, delta, calibration
set) and the gate that serves exactly that expert set, with ``bundle.json`` naming the sha256 of
every file (:mod:`~sammoe_core.deploy.bundle_manifest`). :func:`build_from_bundle` makes the same
:class:`~sammoe_core.moe.segmenter.MoESegmenter` as :func:`~sammoe_core.moe.segmenter.build_from_registry`
without any plugin or ``SAMMOE_HOME`` state: the files are checked against the manifest first,
then loaded through the usual strict loaders (foundation, expert deltas, gate), all of them at
once so a bad file fails before the first volume rather than at the first crop that needs it.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sammoe_core.deploy.bundle_manifest import (
    BUNDLE_MANIFEST,
    BundleExpert,
    BundleFoundation,
    BundleGate,
    BundleManifest,
    bundle_files,
    read_bundle_manifest,
    verify_bundle_files,
)
from sammoe_core.errors import PluginError, WeightsError
from sammoe_core.files.safe_paths import resolve_inside

if TYPE_CHECKING:
    import torch

    from sammoe_core.experts import Expert
    from sammoe_core.experts.foundations import FoundationSpec
    from sammoe_core.moe.segmenter import MoESegmenter

FOUNDATION_FILE = "foundation.safetensors"
EXPERTS_FOLDER = "experts"
GATE_FOLDER = "gate"


@dataclass(frozen=True)
class BundleReport:
    """What ``sammoe bundle`` wrote: the folder, its manifest and its size in bytes."""

    folder: Path
    manifest: BundleManifest
    size_bytes: int


def _moe_to_bundle() -> tuple[FoundationSpec, dict[str, Expert], Path | None]:
    """The foundation in use, the enabled experts (each intact and fitting it) and the gate
    folder that serves exactly them; any problem is an error, never a silent fallback."""
    from sammoe_core.experts import enabled_experts
    from sammoe_core.experts.foundations import resolve_foundation
    from sammoe_core.experts.registry import Registry
    from sammoe_core.model import get_config
    from sammoe_core.moe.gate_choice import choose_gate
    from sammoe_core.moe.segmenter import check_expert_fits
    from sammoe_core.segmentation.preprocessing import Preprocessing

    spec = resolve_foundation()
    preprocessing = Preprocessing(crop_size=get_config(spec.config).image_size)
    experts = enabled_experts()
    for expert in experts.values():
        problem = expert.integrity_problem()
        if problem:
            raise WeightsError(f"{problem}; repair it or `sammoe experts disable {expert.name}` before bundling")
        check_expert_fits(expert, spec.sha256, preprocessing)
    if not experts:
        return spec, experts, None
    registry = Registry()
    current = {name: e.manifest.weights.sha256 for name, e in experts.items()}
    choice = choose_gate(registry.read(), registry.home, spec.sha256, current)
    if choice.folder is None or choice.excluded:
        raise PluginError(f"no gate serves the enabled experts ({choice.problem}); a bundle needs one")
    return spec, experts, choice.folder


def _copy_checked(source: Path, target: Path, sha256: str) -> None:
    """Copy ``source`` to ``target`` and check the copy against ``sha256`` (a file changed or
    damaged on the way is an error, not a bundle)."""
    from sammoe_core.files.hashing import sha256_file

    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    if sha256_file(target) != sha256:
        raise WeightsError(f"{source}: its sha256 is not {sha256} (changed while bundling?)")


def write_bundle(out: str | Path, overwrite: bool = False) -> BundleReport:
    """Write the MoE the local state describes (foundation, enabled experts, their gate) to ``out``.

    The folder is staged beside ``out`` and renamed into place, so a failure leaves nothing half
    written; an existing ``out`` is replaced only with ``overwrite``, and only if it is empty or
    an earlier bundle. The gate is loaded (strict, sha256-checked) before anything is written, and
    every copy is checked against the hash its manifest names.
    """
    from sammoe_core import __version__
    from sammoe_core.experts.expert import copy_expert_folder
    from sammoe_core.files.atomic import atomic_folder, write_text_atomic
    from sammoe_core.files.hashing import sha256_file
    from sammoe_core.model import get_config
    from sammoe_core.moe.gatefile import GATE_MANIFEST, GATE_WEIGHTS, load_gate
    from sammoe_core.plugins.factories import gate_factories

    spec, experts, gate_folder = _moe_to_bundle()
    gate_manifest = None
    if gate_folder is not None:
        _, gate_manifest = load_gate(gate_folder, gate_factories(), get_config(spec.config))
    out = Path(out)
    with atomic_folder(out, overwrite=overwrite, marker=BUNDLE_MANIFEST) as staging:
        _copy_checked(spec.weights, resolve_inside(staging, FOUNDATION_FILE, "foundation file"), spec.sha256)
        entries = []
        for name, expert in experts.items():
            folder = f"{EXPERTS_FOLDER}/{name}"
            copy_expert_folder(expert, resolve_inside(staging, folder, "expert folder"))
            entries.append(BundleExpert(name=name, version=expert.manifest.version, folder=folder))
        if gate_folder is not None and gate_manifest is not None:
            target = resolve_inside(staging, GATE_FOLDER, "gate folder")
            _copy_checked(gate_folder / GATE_WEIGHTS, target / GATE_WEIGHTS, gate_manifest.weights_sha256)
            shutil.copy2(gate_folder / GATE_MANIFEST, target / GATE_MANIFEST)
        files = {relative: sha256_file(staging / relative) for relative in bundle_files(staging)}
        for name, expert in experts.items():  # the copied deltas are the ones the manifests name
            weights = f"{EXPERTS_FOLDER}/{name}/{expert.manifest.weights.file}"
            if files[weights] != expert.manifest.weights.sha256:
                raise WeightsError(f"{expert.weights.path}: its sha256 is not the one its manifest names")
        manifest = BundleManifest(
            sammoe_version=__version__,
            foundation=BundleFoundation(name=spec.name, config=spec.config, file=FOUNDATION_FILE, hub_id=spec.hub_id),
            experts=tuple(entries),
            gate=None if gate_folder is None else BundleGate(folder=GATE_FOLDER),
            files=files,
        )
        write_text_atomic(staging / BUNDLE_MANIFEST, manifest.model_dump_json(indent=2, exclude_none=True) + "\n")
        size = sum((staging / relative).stat().st_size for relative in files)
    return BundleReport(out, manifest, size)


@dataclass(frozen=True)
class OpenedBundle:
    """A bundle whose every file matched ``bundle.json``: where each part is, not yet loaded."""

    folder: Path
    manifest: BundleManifest
    manifest_sha256: str
    foundation: FoundationSpec
    experts: dict[str, Expert]
    gate_folder: Path | None


def open_bundle(folder: str | Path) -> OpenedBundle:
    """Read ``bundle.json``, check the folder holds exactly its files with their sha256, and check
    the parts fit together (experts made on this foundation, the gate trained for these experts)."""
    from sammoe_core.experts import Expert
    from sammoe_core.experts.expert import ExpertSource
    from sammoe_core.experts.foundations import FoundationSpec
    from sammoe_core.files.hashing import sha256_file
    from sammoe_core.model import get_config
    from sammoe_core.moe.gatefile import read_gate_manifest
    from sammoe_core.moe.segmenter import check_expert_fits
    from sammoe_core.segmentation.preprocessing import Preprocessing

    root = Path(folder).absolute()
    manifest = read_bundle_manifest(root)
    verify_bundle_files(root, manifest)
    entry = manifest.foundation
    spec = FoundationSpec(
        name=entry.name,
        config=entry.config,
        weights=resolve_inside(root, entry.file, "bundle foundation file"),
        sha256=manifest.files[entry.file],
        hub_id=entry.hub_id,
    )
    preprocessing = Preprocessing(crop_size=get_config(spec.config).image_size)
    experts: dict[str, Expert] = {}
    for item in manifest.experts:
        expert_folder = resolve_inside(root, item.folder, "bundle expert folder")
        expert = Expert.from_folder(expert_folder, ExpertSource("folder", origin=f"bundle {root}"))
        if expert.name != item.name:
            raise WeightsError(f"bundle {root}: {item.folder} holds expert {expert.name!r}, not {item.name!r}")
        check_expert_fits(expert, spec.sha256, preprocessing)
        experts[item.name] = expert
    gate_folder = None
    if manifest.gate is not None:
        gate_folder = resolve_inside(root, manifest.gate.folder, "bundle gate folder")
        gate = read_gate_manifest(gate_folder)
        wanted = {name: e.manifest.weights.sha256 for name, e in experts.items()}
        if not gate.matches(spec.sha256, wanted):
            raise WeightsError(f"bundle {root}: the gate was trained for another foundation or expert set")
    return OpenedBundle(root, manifest, sha256_file(root / BUNDLE_MANIFEST), spec, experts, gate_folder)


def build_from_bundle(
    folder: str | Path,
    device: str | torch.device = "auto",
    policy: str = "threshold",
    policy_options: Mapping[str, Any] | None = None,
    expert: str | None = None,
) -> MoESegmenter:
    """The MoE a bundle holds, as :func:`~sammoe_core.moe.segmenter.build_from_registry` builds it
    from the local state: same foundation, experts, gate and policy, hence the same masks. No
    plugin and no ``SAMMOE_HOME`` state is read (the built-in policies and gate are part of sammoe).
    Every file is checked and every network loaded strictly here, before the predictor is returned.
    """
    from sammoe_core.devices import resolve_device
    from sammoe_core.moe.gatefile import load_gate
    from sammoe_core.moe.segmenter import MoESegmenter, build_policy
    from sammoe_core.plugins.factories import gate_factories

    bundle = open_bundle(folder)
    dev = resolve_device(device)
    chosen_policy = build_policy(policy, policy_options, expert, bundle.experts)
    model = bundle.foundation.load(dev)
    gate, gate_candidates = None, None
    gate_info: dict[str, Any] = {"gate": None}
    if bundle.gate_folder is not None:
        gate_module, gate_manifest = load_gate(bundle.gate_folder, gate_factories(), model.config)
        gate, gate_candidates = gate_module.to(dev), gate_manifest.candidate_names
        gate_info = {"gate": "bundle", "gate_sha256": gate_manifest.weights_sha256, "gate_stale": False}
    extra = {
        "foundation": bundle.foundation.name,
        "bundle": str(bundle.folder),
        "bundle_sha256": bundle.manifest_sha256,
        "experts": {
            n: {"version": e.manifest.version, "weights_sha256": e.manifest.weights.sha256}
            for n, e in bundle.experts.items()
        },
        **gate_info,
    }
    segmenter = MoESegmenter(
        model,
        bundle.experts,
        gate,
        chosen_policy,
        foundation_sha256=bundle.foundation.sha256,
        gate_candidates=gate_candidates,
        describe_extra=extra,
    )
    for name in bundle.experts:  # load and compose every expert now: strict checks before any volume
        segmenter.model_of(name)
    return segmenter
