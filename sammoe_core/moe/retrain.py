"""``retrain-gate`` as an API: gather prompts, fill the cache, fit, save, record in the registry.

Training prompts come from labelled dataset folders the user names and from the calibration
sets the enabled experts ship (all classes of those sets, so the gate also sees where the
foundation is the better choice). The cache lives in ``SAMMOE_HOME/cache/gate`` and is keyed by
weight hashes, so after adding one expert only that expert's column is computed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SammoeError
from .gatefile import GateCandidate, GateManifest, save_gate
from .policies import FOUNDATION
from .training import Candidate, CacheStats, GateCache, GateFit, fit_gate, gate_signature, iter_dataset_prompts


@dataclass
class RetrainReport:
    gate_dir: Path
    candidates: list[str]
    prompts: int
    fit: GateFit
    cache: CacheStats
    sources: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": str(self.gate_dir),
            "candidates": self.candidates,
            "prompts": self.prompts,
            "sources": self.sources,
            "train_accuracy": round(self.fit.train_accuracy, 4),
            "heldout_accuracy": None if self.fit.heldout_accuracy is None else round(self.fit.heldout_accuracy, 4),
            "heldout_prompts": self.fit.heldout_size,
            "best_candidate_counts": self.fit.label_counts,
            "heldout_table": self.fit.heldout_table,
            "computed": {"encoder_passes": self.cache.encoder_passes, "candidate_passes": self.cache.candidate_passes},
        }

    def table(self) -> str:
        """A plain-text summary: per candidate, how often it is best and how the gate routes."""
        lines = [f"{'candidate':<24}{'best (all)':>11}{'best (held)':>12}{'routed':>8}{'correct':>9}"]
        held = {row["candidate"]: row for row in self.fit.heldout_table}
        for name in self.candidates:
            row = held.get(name, {"best": 0, "routed": 0, "correct": 0})
            lines.append(f"{name:<24}{self.fit.label_counts.get(name, 0):>11}{row['best']:>12}{row['routed']:>8}{row['correct']:>9}")
        acc = self.fit.heldout_accuracy
        lines.append(
            f"routing accuracy: held-out {'n/a' if acc is None else f'{acc:.1%}'} "
            f"({self.fit.heldout_size} prompts), train {self.fit.train_accuracy:.1%}"
        )
        return "\n".join(lines)


def retrain_gate(
    data: list[str | Path] = (),
    *,
    epochs: int = 80,
    device: str = "auto",
    prompts_per_class: int = 4,
    architecture: str = "mlp",
    margin: float = 0.02,
    holdout: float = 0.2,
    seed: int = 0,
    use_calibration: bool = True,
    progress: bool = True,
) -> RetrainReport:
    """Train a gate for the foundation in use and the enabled experts; make it the current gate."""
    from ..devices import resolve_device
    from ..experts import enabled_experts
    from ..experts.registry import Registry
    from ..experts.foundations import resolve_foundation
    from ..factories import gate_factories

    dev = resolve_device(device)
    spec = resolve_foundation()
    experts = {n: e for n, e in sorted(enabled_experts().items())}
    if not experts:
        raise SammoeError("no enabled experts: add one with `sammoe add-expert` before training a gate")
    for e in experts.values():
        e.check_foundation(spec.sha256)
    factories = gate_factories()
    if architecture not in factories:
        raise SammoeError(f"unknown gate architecture {architecture!r}; installed: {', '.join(sorted(factories))}")
    foundation_model = spec.load(dev)
    config = foundation_model.config
    registry = Registry()
    cache_root = registry.home / "cache"
    sources = [str(Path(d)) for d in data]
    if use_calibration:
        sources += [str(e.calibration_dir) for e in experts.values() if e.calibration_dir is not None]
    if not sources:
        raise SammoeError("no training data: pass --data DIR, or enable experts that ship calibration sets")
    from ..preprocessing import Preprocessing

    pre = Preprocessing(crop_size=config.image_size)
    prompts = itertools.chain.from_iterable(
        iter_dataset_prompts(src, pre, cache_root / "volumes", None, prompts_per_class, seed)
        for src in dict.fromkeys(sources)
    )
    foundation = Candidate(FOUNDATION, spec.sha256, lambda: foundation_model)
    cands = [
        Candidate(n, e.manifest.weights.sha256, (lambda e=e: e.build(foundation_model, spec.sha256)), e.overrides_encoder)
        for n, e in experts.items()
    ]
    records, stats = GateCache(cache_root / "gate").build(prompts, foundation, cands, dev, progress=progress)
    if len(records) < 4:
        raise SammoeError(f"only {len(records)} training prompts found in {', '.join(sources)}")
    order = [FOUNDATION, *experts]
    gate = factories[architecture](config, len(order))
    fit = fit_gate(records, order, gate, config.image_size, epochs=epochs, margin=margin, holdout=holdout, seed=seed, device=dev)
    signature = gate_signature(spec.sha256, [(n, e.manifest.weights.sha256) for n, e in experts.items()])
    folder = registry.home / "gates" / signature[:16]
    manifest = GateManifest(
        architecture=architecture,
        network_config=config.name,
        foundation_sha256=spec.sha256,
        candidates=[GateCandidate(name=FOUNDATION, weights_sha256=spec.sha256)]
        + [GateCandidate(name=n, weights_sha256=e.manifest.weights.sha256) for n, e in experts.items()],
        trained={
            "prompts": len(records),
            "heldout_accuracy": fit.heldout_accuracy,
            "train_accuracy": fit.train_accuracy,
            "margin": margin,
            "epochs": epochs,
            "sources": [Path(s).name for s in dict.fromkeys(sources)],
        },
    )
    save_gate(folder, fit.gate, manifest)
    registry.set_gate(folder, list(experts), spec.sha256)
    return RetrainReport(folder, order, len(records), fit, stats, list(dict.fromkeys(sources)))
