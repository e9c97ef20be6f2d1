"""Which gate serves the enabled experts, decided from the gate manifests, never from flags.

The gate that ``sammoe retrain-gate`` recorded in the registry serves the enabled experts when its
manifest names exactly their (name, weights sha256) set and the foundation in use; otherwise a
gate shipped with sammoe for exactly that set does (the embedded default). Staleness is therefore
a comparison of sets: disabling and re-enabling an expert changes nothing. A recorded gate that
cannot be read (folder gone, manifest invalid, path outside ``SAMMOE_HOME``) is *broken*: the MoE
warns and uses the foundation alone (an error under ``--strict``), never silently another gate.

Experts left out for being damaged are ``excluded``: a gate trained with them still serves the
rest (their columns are dropped from its probabilities).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sammoe_core.errors import SammoeError
from sammoe_core.files.safe_paths import resolve_inside
from sammoe_core.moe.gatefile import GateManifest, read_gate_manifest

if TYPE_CHECKING:
    from sammoe_core.experts.registry import RegistryState

SHIPPED_GATES = Path(__file__).resolve().parent.parent / "weights" / "gates"
STALE_GATE = (
    "the gate is stale: it was trained for another expert set (experts added, removed or changed); "
    "run `sammoe retrain-gate`"
)
NO_GATE = "no gate trained for the enabled experts; run `sammoe retrain-gate`"

GateKind = Literal["trained", "shipped", "stale", "broken", "none"]


@dataclass(frozen=True)
class GateChoice:
    """The gate to use (``folder``), or why there is none (``kind`` and ``problem``)."""

    kind: GateKind
    folder: Path | None = None
    manifest: GateManifest | None = None
    problem: str = ""
    excluded: tuple[str, ...] = field(default=())

    @property
    def usable(self) -> bool:
        return self.folder is not None

    def summary(self) -> str:
        """One phrase for messages: what serves the expert set now."""
        if self.kind == "trained":
            return "the trained gate serves this expert set"
        if self.kind == "shipped":
            return "the gate shipped with sammoe serves this expert set"
        return self.problem


def gate_folder(path: str, home: Path) -> Path:
    """A recorded gate path (relative to ``SAMMOE_HOME``; older states hold absolute ones),
    resolved and required to stay inside ``SAMMOE_HOME``."""
    return resolve_inside(home, path, "the registry's gate path")


def _matches(
    manifest: GateManifest, foundation_sha256: str, experts: Mapping[str, str], excluded: Mapping[str, str]
) -> tuple[str, ...] | None:
    """None if the gate does not serve ``experts``; else the excluded experts it was trained with."""
    if manifest.matches(foundation_sha256, dict(experts)):
        return ()
    if excluded and manifest.matches(foundation_sha256, {**experts, **excluded}):
        return tuple(sorted(excluded))
    return None


def choose_gate(
    state: RegistryState,
    home: Path,
    foundation_sha256: str,
    experts: Mapping[str, str],
    excluded: Mapping[str, str] | None = None,
) -> GateChoice:
    """The gate for the foundation ``foundation_sha256`` and ``experts`` (name -> weights sha256)."""
    excluded = dict(excluded or {})
    if state.gate is not None:
        try:
            folder = gate_folder(state.gate.path, home)
            manifest = read_gate_manifest(folder)
        except SammoeError as e:
            return GateChoice("broken", problem=f"the current gate is unusable: {e}")
        dropped = _matches(manifest, foundation_sha256, experts, excluded)
        if dropped is not None:
            return GateChoice("trained", folder, manifest, excluded=dropped)
    for manifest_path in sorted(SHIPPED_GATES.glob("*/gate.json")):
        manifest = read_gate_manifest(manifest_path.parent)
        dropped = _matches(manifest, foundation_sha256, experts, excluded)
        if dropped is not None:
            return GateChoice("shipped", manifest_path.parent, manifest, excluded=dropped)
    if not experts:
        return GateChoice("none", problem="no experts enabled: the foundation works alone")
    if state.gate is not None:
        return GateChoice("stale", problem=STALE_GATE)
    return GateChoice("none", problem=NO_GATE)


def current_gate_choice() -> GateChoice:
    """:func:`choose_gate` for the local state: the foundation in use and the enabled experts."""
    from sammoe_core.experts import enabled_experts
    from sammoe_core.experts.foundations import NoFoundation, resolve_foundation
    from sammoe_core.experts.registry import Registry

    registry = Registry()
    try:
        foundation = resolve_foundation().sha256
    except NoFoundation:
        return GateChoice("none", problem="no foundation chosen (`sammoe foundation set`)")
    experts = {name: e.manifest.weights.sha256 for name, e in enabled_experts().items()}
    return choose_gate(registry.read(), registry.home, foundation, experts)
