"""A trained gate on disk: ``gate.safetensors`` plus ``gate.json`` naming exactly what it routes.

The manifest records the gate architecture and its hyper-parameters, the ordered candidates
(the foundation first, then each expert with the sha256 of its weights) and the foundation's
hash, so a gate is only ever used for the expert set it was trained for.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from sammoe_core.errors import SammoeError
from sammoe_core.files.atomic import atomic_output, write_text_atomic

if TYPE_CHECKING:
    import torch

    from sammoe_core.model import SamConfig
    from sammoe_core.plugins.factories import Registered

GATE_MANIFEST = "gate.json"
GATE_WEIGHTS = "gate.safetensors"


SHA256 = r"^[0-9a-f]{64}$"
MAX_CANDIDATES = 256


class GateCandidate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=64)
    weights_sha256: str = Field(pattern=SHA256)


class GateManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    manifest_version: int = 1
    architecture: str = Field("mlp", pattern=r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$", max_length=64)
    hparams: dict[str, Any] = Field(default_factory=dict)
    network_config: str = Field(min_length=1, max_length=128)
    foundation_sha256: str = Field(pattern=SHA256)
    candidates: list[GateCandidate] = Field(min_length=2, max_length=MAX_CANDIDATES)
    weights_sha256: str = Field("", pattern=r"^([0-9a-f]{64})?$")
    trained: dict[str, Any] = Field(default_factory=dict, description="samples, accuracy, date, version")

    @property
    def candidate_names(self) -> list[str]:
        return [c.name for c in self.candidates]

    def matches(self, foundation_sha256: str, experts: dict[str, str]) -> bool:
        """Whether this gate was trained for exactly this foundation and expert set (name -> sha)."""
        mine = {c.name: c.weights_sha256 for c in self.candidates[1:]}
        return self.foundation_sha256 == foundation_sha256 and mine == experts


def save_gate(folder: str | Path, gate: torch.nn.Module, manifest: GateManifest) -> GateManifest:
    """Write the gate's weights and manifest into ``folder`` (atomically, replacing a previous gate)."""
    from safetensors.torch import save_file

    from sammoe_core.files.hashing import sha256_file, sha256_tensors

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in gate.state_dict().items()}
    with atomic_output(folder / GATE_WEIGHTS, overwrite=True) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", "tensors_sha256": sha256_tensors(tensors)})
    manifest = manifest.model_copy(
        update={
            "weights_sha256": sha256_file(folder / GATE_WEIGHTS),
            "trained": {**manifest.trained, "date": datetime.now(timezone.utc).isoformat(timespec="seconds")},
        }
    )
    write_text_atomic(folder / GATE_MANIFEST, manifest.model_dump_json(indent=2) + "\n", overwrite=True)
    return manifest


def read_gate_manifest(folder: str | Path) -> GateManifest:
    from sammoe_core.files.json_models import read_json_model

    path = Path(folder) / GATE_MANIFEST
    return read_json_model(path, GateManifest, "gate manifest", "no gate here (run `sammoe retrain-gate`)")


def load_gate(folder: str | Path, factories: dict[str, Registered], config: SamConfig) -> tuple[Any, GateManifest]:
    """Build the gate module named in the manifest and load its weights strictly (sha256 checked).

    Nothing is allocated before the checks pass: the hyper-parameters are validated against the
    architecture's options model, the module is first built on the meta device and its tensor
    names and shapes compared with the weights file.
    """
    import torch

    from sammoe_core.model.checkpoint import load_weights

    manifest = read_gate_manifest(folder)
    where = str(Path(folder) / GATE_MANIFEST)
    if manifest.architecture not in factories:
        raise SammoeError(
            f"{folder}: gate architecture {manifest.architecture!r} is not installed "
            f"(known: {', '.join(sorted(factories))})"
        )
    if manifest.network_config != config.name:
        raise SammoeError(f"{folder}: gate was trained for config {manifest.network_config!r}, not {config.name!r}")
    if not manifest.weights_sha256:
        raise SammoeError(f"{where}: no weights_sha256 (a gate's weights are always checked)")
    arch = factories[manifest.architecture]
    hparams = arch.validate(manifest.hparams, where)  # unknown or out-of-range: an error, nothing built
    state, _ = load_weights(Path(folder) / GATE_WEIGHTS, expected_sha256=manifest.weights_sha256)
    try:
        with torch.device("meta"):
            skeleton = arch.factory(config, len(manifest.candidates), **hparams)
        expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    except Exception as e:  # a plugin's factory: report, never a traceback
        raise SammoeError(
            f"{folder}: gate {manifest.architecture!r} could not be built ({type(e).__name__}: {e})"
        ) from None
    missing, unexpected = set(expected) - set(state), set(state) - set(expected)
    if missing or unexpected:
        raise SammoeError(
            f"{folder}: gate weights do not fit: missing {sorted(missing)}, unexpected {sorted(unexpected)}"
        )
    wrong = [
        f"{k} {tuple(state[k].shape)} != {shape}" for k, shape in expected.items() if tuple(state[k].shape) != shape
    ]
    if wrong:
        raise SammoeError(f"{folder}: gate weights do not fit its manifest: {'; '.join(wrong[:3])}")
    gate = arch.factory(config, len(manifest.candidates), **hparams)
    gate.load_state_dict(state, strict=True)
    return gate.eval(), manifest
