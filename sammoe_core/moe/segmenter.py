"""MoESegmenter: foundation + experts + gate + policy, as one :class:`CropPredictor`.

Per crop the foundation's image encoder runs once. On a target's first decode the foundation
embeds the prompt (a box counts as a click at its centre), the gate scores every candidate from
that embedding and the prompt tokens, and the policy picks the candidate(s): the decode returns
that choice as a :class:`~sammoe_core.segmentation.predictor.Route`, and the caller passes it into
the target's later decodes (further clicks, the extra crops edge extension adds, which may hold
no click at all), so one structure is segmented by one consistent model. The segmenter itself
keeps no per-target state. Each chosen expert is composed over the foundation the first time it
is used (its delta file is only then read); an expert that overrides only prompt-encoder or
decoder tensors reuses the foundation's embedding, one with its own encoder runs it on this crop
only when it is chosen. The chosen candidates' low-res logits are blended with the policy's
weights; the route (gate probabilities and choice) is returned with every prediction.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import torch

from sammoe_core.devices import Precision, autocast
from sammoe_core.errors import InputError, SammoeError
from sammoe_core.model import Sam3D
from sammoe_core.moe.gate import GateInput
from sammoe_core.moe.policies import FOUNDATION, Policy, Selection
from sammoe_core.segmentation.encoder_runtime import EncoderRunners
from sammoe_core.segmentation.predictor import CropPrediction, Route
from sammoe_core.segmentation.preprocessing import Preprocessing


class MoEWarning(UserWarning):
    """Something about the expert set the user should know; segmentation goes on."""


class StaleGateWarning(MoEWarning):
    """The gate does not match the enabled experts; the segmenter falls back to the foundation."""


class ExpertSkippedWarning(MoEWarning):
    """An enabled expert cannot run: other foundation or preprocessing, or damaged weights."""


@dataclass
class MoEState:
    crop: torch.Tensor
    embedding: torch.Tensor
    expert_embeddings: dict[str, torch.Tensor] = field(default_factory=dict)


class MoESegmenter:
    """Foundation + experts + gate + policy behind the CropPredictor interface."""

    def __init__(
        self,
        foundation: Sam3D,
        experts: Mapping[str, Any] | None = None,
        gate: torch.nn.Module | None = None,
        policy: Policy | None = None,
        *,
        foundation_sha256: str = "",
        gate_candidates: list[str] | None = None,
        preprocessing: Preprocessing | None = None,
        describe_extra: dict[str, Any] | None = None,
    ) -> None:
        from sammoe_core.moe.policies import FoundationPolicy

        self.foundation = foundation
        self.config = foundation.config
        self.preprocessing = preprocessing or Preprocessing(crop_size=foundation.config.image_size)
        self.experts = dict(sorted((experts or {}).items()))
        self.candidates = [FOUNDATION, *self.experts]
        self.gate = gate
        self.gate_candidates = gate_candidates or self.candidates
        missing = [c for c in self.candidates if c not in self.gate_candidates]
        if gate is not None and (missing or self.gate_candidates[0] != FOUNDATION):
            raise SammoeError(f"gate candidates {self.gate_candidates} do not cover the candidates {self.candidates}")
        # the gate's columns of this segmenter's candidates (a gate trained with experts that are
        # now left out for damage still routes among the rest)
        self._gate_columns = [self.gate_candidates.index(c) for c in self.candidates] if gate is not None else []
        self.policy = policy or FoundationPolicy()
        self.foundation_sha256 = foundation_sha256
        self._models: dict[str, Sam3D] = {FOUNDATION: foundation}
        self._extra = dict(describe_extra or {})
        self.precision: Precision = "fp32"  # the networks' precision; the gate always runs in fp32
        self.precision_reason = "the exact mode"
        self.cuda_graphs = True  # encoders replayed as CUDA graphs on CUDA
        self.crop_batch = 1  # crops segmentation encodes at once
        self._runners = EncoderRunners()

    # --- candidates ---------------------------------------------------------------------------

    def model_of(self, name: str) -> Sam3D:
        """The network of a candidate, composed over the foundation on first use."""
        if name not in self._models:
            if name not in self.experts:
                raise SammoeError(f"no expert {name!r}; candidates: {', '.join(self.candidates)}")
            expert = self.experts[name]
            self._models[name] = (
                expert.build(self.foundation, self.foundation_sha256) if hasattr(expert, "build") else expert
            )
        return self._models[name]

    def uses_own_encoder(self, name: str) -> bool:
        """Whether candidate ``name`` needs its own image-encoder pass (else it reuses the foundation's)."""
        if name == FOUNDATION:
            return False
        return bool(self.experts[name].overrides_encoder)

    # --- CropPredictor ------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.foundation.device

    def _encoder(self, name: str) -> Any:
        return self._runners.get(name, self.model_of(name), self.precision, self.cuda_graphs)

    @torch.no_grad()
    def encode(self, crop: torch.Tensor) -> MoEState:
        return self.encode_batch(crop)[0]

    @torch.no_grad()
    def encode_batch(self, crops: torch.Tensor) -> list[MoEState]:
        crops = crops.to(self.foundation.device)
        embeddings = self._encoder(FOUNDATION)(crops)
        return [MoEState(crop=crops[i : i + 1], embedding=embeddings[i : i + 1]) for i in range(crops.shape[0])]

    def _probabilities(
        self, state: MoEState, points: torch.Tensor | None, labels: torch.Tensor | None
    ) -> list[float] | None:
        if self.gate is None or points is None:
            return None
        if labels is None:
            raise InputError("points need labels (1 positive, 0 negative)")
        sparse, _ = self.foundation.embed_prompts(points, labels)
        inp = GateInput(state.embedding, sparse, points, labels, self.config.image_size)
        logits = self.gate(inp).float()[:, self._gate_columns]
        probs = torch.softmax(logits, dim=-1)[0]
        if not bool(torch.isfinite(probs).all()):
            return None  # non-finite gate output (absurd input): nothing to route on
        return probs.tolist()

    def route_for(
        self,
        state: MoEState,
        points: torch.Tensor | None,
        point_labels: torch.Tensor | None,
        boxes: torch.Tensor | None = None,
    ) -> Route:
        """The route the gate and policy choose for these prompts (a box: its centre as a click)."""
        if points is None and boxes is not None:
            points = boxes.float().mean(dim=1, keepdim=True)
            point_labels = torch.ones(points.shape[0], 1, dtype=torch.long, device=points.device)
        probs = self._probabilities(state, points, point_labels)
        policy = getattr(self.policy, "name", type(self.policy).__name__)
        if probs is None and self.policy.needs_gate:
            selection = Selection({FOUNDATION: 1.0})  # no (valid) gate or no prompt: nothing to route on
        else:
            uniform = [1.0 / len(self.candidates)] * len(self.candidates)
            selection = self.policy.select(probs if probs is not None else uniform, self.candidates)
        gate = None if probs is None else dict(zip(self.candidates, probs))
        return Route(dict(selection.weights), gate, policy)

    @torch.no_grad()
    def decode(
        self,
        state: MoEState,
        points: torch.Tensor | None,
        point_labels: torch.Tensor | None,
        mask_prompt: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        route: Route | None = None,
    ) -> CropPrediction:
        dev = self.foundation.device

        def mv(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(dev)

        points, point_labels, mask_prompt, boxes = mv(points), mv(point_labels), mv(mask_prompt), mv(boxes)
        route = route or self.route_for(state, points, point_labels, boxes)
        blended = None
        for name, weight in route.weights.items():
            model = self.model_of(name)
            if self.uses_own_encoder(name):
                if name not in state.expert_embeddings:
                    state.expert_embeddings[name] = self._encoder(name)(state.crop)
                embedding = state.expert_embeddings[name]
            else:
                embedding = state.embedding
            with autocast(self.device, self.precision):
                logits = model.decode(embedding, points, point_labels, mask_prompt, boxes).float()
            blended = logits * weight if blended is None else blended + logits * weight
        if blended is None:
            raise SammoeError(f"policy {route.policy!r} chose no candidate")
        return CropPrediction(blended, route.to_dict(), route)

    @torch.no_grad()
    def upsample(self, low_res_logits: torch.Tensor) -> torch.Tensor:
        return self.foundation.upsample(low_res_logits)

    def describe(self) -> dict[str, Any]:
        policy = (
            {k: v for k, v in vars(self.policy).items() if not k.startswith("_")}
            if hasattr(self.policy, "__dict__")
            else {}
        )
        return {
            "predictor": "moe",
            "config": self.config.name,
            "device": str(self.foundation.device),
            "precision": self.precision,
            "precision_reason": self.precision_reason,
            **self._runners.describe(FOUNDATION, self.device, self.precision, self.cuda_graphs),
            "crop_batch": self.crop_batch,
            "foundation_sha256": self.foundation_sha256,
            "candidates": self.candidates,
            "policy": getattr(self.policy, "name", type(self.policy).__name__),
            "policy_settings": policy,
            **self._extra,
        }


def check_expert_fits(expert: Any, foundation_sha256: str, preprocessing: Preprocessing) -> None:
    """Refuse an expert made on another foundation or expecting other preprocessing (a SammoeError)."""
    expert.check_foundation(foundation_sha256)
    if expert.manifest.preprocessing != preprocessing:
        raise SammoeError(
            f"expert {expert.name!r} expects other preprocessing ({expert.manifest.preprocessing.model_dump()}) "
            f"than its foundation ({preprocessing.model_dump()})"
        )


def build_policy(
    policy: str, policy_options: Mapping[str, Any] | None, expert: str | None, experts: Mapping[str, Any]
) -> Policy:
    """The selection policy named ``policy`` (from the policy plugins), its options validated;
    ``expert`` forces that one of ``experts`` (policy ``fixed``)."""
    from sammoe_core.plugins.factories import policy_factories

    factories = policy_factories()
    options = dict(policy_options or {})
    if expert is not None:
        policy, options = "fixed", {**options, "expert": expert}
    if policy == "fixed" and options.get("expert") not in experts:
        wanted = options.get("expert")
        raise InputError(
            f"policy fixed: no enabled expert {wanted!r}; enabled: {', '.join(sorted(experts)) or 'none'}"
            if wanted
            else "policy fixed needs the expert to use"
        )
    if policy not in factories:
        raise InputError(f"unknown policy {policy!r}; installed: {', '.join(sorted(factories))}")
    return cast(Policy, factories[policy].build(options=options))


def build_from_registry(
    device: str | torch.device = "auto",
    policy: str = "threshold",
    policy_options: Mapping[str, Any] | None = None,
    expert: str | None = None,
    strict: bool = False,
    foundation: str | None = None,
) -> MoESegmenter:
    """The MoE as the local state describes it: the foundation in use, enabled experts, gate.

    Which gate serves the enabled experts is decided by :func:`~.gate_choice.choose_gate`; a
    missing, stale or broken gate falls back to the foundation (a :class:`StaleGateWarning`), or
    is an error under ``strict``. An expert whose weights fail their (cached) sha256 check is left
    out with an :class:`ExpertSkippedWarning` (an error under ``strict``). ``policy_options`` are
    validated against the policy's options model (an unknown option is an error). ``expert``
    forces one expert (policy ``fixed``).
    """
    from sammoe_core.devices import resolve_device
    from sammoe_core.experts import enabled_experts
    from sammoe_core.experts.foundations import resolve_foundation
    from sammoe_core.experts.registry import Registry
    from sammoe_core.moe.gate_choice import GateChoice, choose_gate
    from sammoe_core.moe.gatefile import load_gate
    from sammoe_core.plugins.factories import gate_factories

    dev = resolve_device(device)
    spec = resolve_foundation(foundation)
    model = spec.load(dev)
    experts = {}
    damaged: dict[str, str] = {}
    notes = []
    pre = Preprocessing(crop_size=model.config.image_size)
    for name, ex in enabled_experts().items():
        try:
            problem = ex.integrity_problem()
            if problem:
                damaged[name] = ex.manifest.weights.sha256
                raise SammoeError(problem)
            check_expert_fits(ex, spec.sha256, pre)
        except SammoeError as e:
            if strict:
                raise
            notes.append(f"expert {name!r} skipped: {e}")
            warnings.warn(ExpertSkippedWarning(f"expert {name!r} skipped: {e}"), stacklevel=2)
            continue
        experts[name] = ex
    chosen_policy = build_policy(policy, policy_options, expert, experts)
    registry = Registry()
    state = registry.read()
    gate = None
    gate_candidates = None
    gate_info: dict[str, Any] = {"gate": None}
    current = {n: e.manifest.weights.sha256 for n, e in experts.items()}
    choice = choose_gate(state, registry.home, spec.sha256, current, damaged)
    if choice.folder is not None and experts:
        gate_dir = choice.folder
        try:
            gate_module, manifest = load_gate(gate_dir, gate_factories(), model.config)
        except SammoeError as e:
            choice = GateChoice("broken", problem=f"the current gate ({choice.kind}) is unusable: {e}")
        else:
            gate, gate_candidates = gate_module.to(dev), manifest.candidate_names
            gate_info = {
                "gate": str(gate_dir),
                "gate_kind": choice.kind,
                "gate_sha256": manifest.weights_sha256,
                "gate_stale": False,
                **({"gate_excluded": list(choice.excluded)} if choice.excluded else {}),
            }
    if gate is None and experts and chosen_policy.needs_gate:
        if strict:
            raise SammoeError(choice.problem)
        warnings.warn(StaleGateWarning(choice.problem + "; using the foundation alone"), stacklevel=2)
        notes.append(choice.problem)
        gate_info = {
            "gate": state.gate.path if state.gate else None,
            "gate_kind": choice.kind,
            "gate_stale": choice.kind == "stale",
        }
    extra = {
        "foundation": spec.name,
        "experts": {
            n: {"version": e.manifest.version, "weights_sha256": e.manifest.weights.sha256} for n, e in experts.items()
        },
        **gate_info,
        **({"notes": notes} if notes else {}),
    }
    return MoESegmenter(
        model,
        experts,
        gate,
        chosen_policy,
        foundation_sha256=spec.sha256,
        gate_candidates=gate_candidates,
        describe_extra=extra,
    )
