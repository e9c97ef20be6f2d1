"""``retrain-gate`` as an API: gather prompts, fill the cache, fit, save, record in the registry.

With ``ray`` options, the cache is filled by Ray actors first (:mod:`.ray_cache`; each builds the
candidates once, prompts travel as references to the prepared volumes); the gate is then fitted
here from the cache, as always.

Training prompts come from labelled dataset folders the user names and from the calibration
sets the enabled experts ship (all classes of those sets, so the gate also sees where the
foundation is the better choice). The cache lives in ``SAMMOE_HOME/cache/gate`` and is keyed by
weight hashes, so after adding one expert only that expert's column is computed; it is filled
``batch_size`` prompts per batched network pass.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from sammoe_core.errors import SammoeError
from sammoe_core.moe.gate_training import (
    CacheStats,
    Candidate,
    GateCache,
    GateFit,
    fit_gate,
    gate_signature,
    iter_dataset_prompt_refs,
)
from sammoe_core.moe.gatefile import GateCandidate, GateManifest, save_gate
from sammoe_core.moe.policies import FOUNDATION

if TYPE_CHECKING:
    import torch

    from sammoe_core.distributed.ray_support import RayOptions
    from sammoe_core.experts import Expert
    from sammoe_core.experts.foundations import FoundationSpec
    from sammoe_core.model import Sam3D


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
            lines.append(
                f"{name:<24}{self.fit.label_counts.get(name, 0):>11}"
                f"{row['best']:>12}{row['routed']:>8}{row['correct']:>9}"
            )
        acc = self.fit.heldout_accuracy
        lines.append(
            f"routing accuracy: held-out {'n/a' if acc is None else f'{acc:.1%}'} "
            f"({self.fit.heldout_size} prompts), train {self.fit.train_accuracy:.1%}"
        )
        return "\n".join(lines)


@dataclass
class CandidateSet:
    """The foundation in use and the enabled experts, as gate candidates (models built lazily)."""

    spec: FoundationSpec
    experts: dict[str, Expert]
    foundation_model: Sam3D
    foundation: Candidate
    candidates: list[Candidate]  # the foundation first, then the experts by name

    def hashes(self) -> dict[str, str]:
        return {c.name: c.weights_sha256 for c in self.candidates}


def load_candidates(device: torch.device, names: list[str] | None = None) -> CandidateSet:
    """The candidates the local state names (only the experts ``names``, when given); the
    foundation is loaded on ``device``."""
    from sammoe_core.experts import enabled_experts
    from sammoe_core.experts.foundations import resolve_foundation

    spec = resolve_foundation()
    experts = {n: e for n, e in sorted(enabled_experts().items()) if names is None or n in names}
    if not experts:
        raise SammoeError("no enabled experts: add one with `sammoe add-expert` before training a gate")
    for e in experts.values():
        e.check_foundation(spec.sha256)
    foundation_model = spec.load(device)
    foundation = Candidate(FOUNDATION, spec.sha256, lambda: foundation_model)
    experts_ = [
        Candidate(
            n, e.manifest.weights.sha256, functools.partial(e.build, foundation_model, spec.sha256), e.overrides_encoder
        )
        for n, e in experts.items()
    ]
    return CandidateSet(spec, experts, foundation_model, foundation, [foundation, *experts_])


def retrain_gate(
    data: Sequence[str | Path] = (),
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
    ray: RayOptions | None = None,
    batch_size: int | None = None,
) -> RetrainReport:
    """Train a gate for the foundation in use and the enabled experts; make it the current gate.

    ``ray``: fill the cache on a Ray actor pool first (a cluster, or a local Ray).
    ``batch_size``: prompts per batched network pass while filling the cache (None: 8 on a GPU,
    1 on a CPU; see :func:`~sammoe_core.moe.gate_training.default_batch_size`).
    """
    from sammoe_core.devices import resolve_device
    from sammoe_core.experts.registry import Registry
    from sammoe_core.plugins.factories import gate_factories

    dev = resolve_device(device)
    if batch_size is not None and batch_size < 1:
        raise SammoeError(f"batch size {batch_size}: need at least 1")
    factories = gate_factories()
    if architecture not in factories:
        raise SammoeError(f"unknown gate architecture {architecture!r}; installed: {', '.join(sorted(factories))}")
    chosen = load_candidates(dev)
    spec, experts, foundation_model = chosen.spec, chosen.experts, chosen.foundation_model
    config = foundation_model.config
    registry = Registry()
    layout = registry.layout
    sources = [str(Path(d)) for d in data]
    if use_calibration:
        sources += [str(e.calibration_dir) for e in experts.values() if e.calibration_dir is not None]
    if not sources:
        raise SammoeError("no training data: pass --data DIR, or enable experts that ship calibration sets")
    from sammoe_core.io.datasets import LabelledDataset

    for src in dict.fromkeys(sources):  # every folder checked before anything is written
        if not LabelledDataset(src).cases:
            raise SammoeError(f"{src}: the labelled dataset holds no cases")
    from sammoe_core.segmentation.preprocessing import Preprocessing

    pre = Preprocessing(crop_size=config.image_size)
    refs = list(
        itertools.chain.from_iterable(  # by reference: cheap, and it gives the progress bar its total
            iter_dataset_prompt_refs(src, pre, layout.volume_cache, None, prompts_per_class, seed)
            for src in dict.fromkeys(sources)
        )
    )
    cache = GateCache(layout.gate_cache)
    ray_stats = CacheStats()
    if ray is not None:
        from sammoe_core.distributed.ray_gate_cache import fill_cache_on_ray

        ray_stats = fill_cache_on_ray(refs, cache, chosen.candidates, device, ray, batch_size)
    prompts = (ref.load() for ref in refs)
    records, stats = cache.build(
        prompts,
        chosen.foundation,
        chosen.candidates[1:],
        dev,
        progress=progress,
        total=len(refs),
        batch_size=batch_size,
    )
    stats.add(ray_stats)
    if len(records) < 4:
        raise SammoeError(f"only {len(records)} training prompts found in {', '.join(sources)}")
    order = [FOUNDATION, *experts]
    with torch.random.fork_rng(devices=[]):  # the gate's initial weights depend on the seed alone
        torch.manual_seed(seed)
        gate = factories[architecture].build(config, len(order))
    fit = fit_gate(
        records, order, gate, config.image_size, epochs=epochs, margin=margin, holdout=holdout, seed=seed, device=dev
    )
    signature = gate_signature(spec.sha256, [(n, e.manifest.weights.sha256) for n, e in experts.items()])
    folder = registry.layout.gates_dir / signature[:16]
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
