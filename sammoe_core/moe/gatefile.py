"""A trained gate on disk: ``gate.safetensors`` plus ``gate.json`` naming exactly what it routes.

The manifest records the gate architecture and its hyper-parameters, the ordered candidates
(the foundation first, then each expert with the sha256 of its weights) and the foundation's
hash, so a gate is only ever used for the expert set it was trained for.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..atomic import atomic_output, write_text_atomic
from ..errors import SammoeError

GATE_MANIFEST = "gate.json"
GATE_WEIGHTS = "gate.safetensors"


class GateCandidate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    weights_sha256: str


class GateManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    manifest_version: int = 1
    architecture: str = "mlp"
    hparams: dict[str, Any] = Field(default_factory=dict)
    network_config: str
    foundation_sha256: str
    candidates: list[GateCandidate]
    weights_sha256: str = ""
    trained: dict[str, Any] = Field(default_factory=dict, description="samples, accuracy, date, version")

    @property
    def candidate_names(self) -> list[str]:
        return [c.name for c in self.candidates]

    def matches(self, foundation_sha256: str, experts: dict[str, str]) -> bool:
        """Whether this gate was trained for exactly this foundation and expert set (name -> sha)."""
        mine = {c.name: c.weights_sha256 for c in self.candidates[1:]}
        return self.foundation_sha256 == foundation_sha256 and mine == experts


def save_gate(folder: str | Path, gate, manifest: GateManifest) -> GateManifest:
    """Write the gate's weights and manifest into ``folder`` (atomically, replacing a previous gate)."""
    from safetensors.torch import save_file

    from ..hashing import sha256_file, sha256_tensors

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in gate.state_dict().items()}
    with atomic_output(folder / GATE_WEIGHTS, overwrite=True) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", "tensors_sha256": sha256_tensors(tensors)})
    manifest = manifest.model_copy(update={
        "weights_sha256": sha256_file(folder / GATE_WEIGHTS),
        "trained": {**manifest.trained, "date": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    })
    write_text_atomic(folder / GATE_MANIFEST, manifest.model_dump_json(indent=2) + "\n", overwrite=True)
    return manifest


def read_gate_manifest(folder: str | Path) -> GateManifest:
    path = Path(folder) / GATE_MANIFEST
    try:
        return GateManifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise SammoeError(f"{path}: no gate here (run `sammoe retrain-gate`)") from None
    except (json.JSONDecodeError, ValueError) as e:
        raise SammoeError(f"{path}: unreadable gate manifest ({type(e).__name__})") from None


def load_gate(folder: str | Path, factories: dict, config) -> tuple[Any, GateManifest]:
    """Build the gate module named in the manifest and load its weights strictly (sha256 checked)."""
    from ..model.checkpoint import load_weights

    manifest = read_gate_manifest(folder)
    if manifest.architecture not in factories:
        raise SammoeError(
            f"{folder}: gate architecture {manifest.architecture!r} is not installed "
            f"(known: {', '.join(sorted(factories))})"
        )
    if manifest.network_config != config.name:
        raise SammoeError(f"{folder}: gate was trained for config {manifest.network_config!r}, not {config.name!r}")
    state, _ = load_weights(Path(folder) / GATE_WEIGHTS, expected_sha256=manifest.weights_sha256)
    gate = factories[manifest.architecture](config, len(manifest.candidates), **manifest.hparams)
    missing, unexpected = set(gate.state_dict()) - set(state), set(state) - set(gate.state_dict())
    if missing or unexpected:
        raise SammoeError(f"{folder}: gate weights do not fit: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
    gate.load_state_dict(state, strict=True)
    return gate.eval(), manifest
