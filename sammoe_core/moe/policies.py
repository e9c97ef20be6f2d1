"""Selection policies: gate probabilities over candidates -> which candidates' masks to use.

Candidate 0 is always the foundation (the general expert). A policy returns a :class:`Selection`,
the blend weights of the candidates it keeps (summing to 1); the MoE segmenter blends those
candidates' low-res logits with these weights. Built-in policies are registered through the
``register_policies`` hook like any plugin's, each with the pydantic model of its options (so a
misspelt or foreign option is an error, never silently ignored).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from sammoe_core.errors import SammoeError

FOUNDATION = "foundation"


@dataclass(frozen=True)
class Selection:
    """Candidate name -> blend weight (weights sum to 1)."""

    weights: dict[str, float]

    @property
    def chosen(self) -> list[str]:
        return sorted(self.weights, key=self.weights.__getitem__, reverse=True)


class Policy(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def needs_gate(self) -> bool:
        """False for policies that ignore the gate (they work without one)."""

    def select(self, probs: Sequence[float], candidates: Sequence[str]) -> Selection:
        """probs[i] is the gate's probability for candidates[i]; candidates[0] is the foundation."""


def _argmax(probs: Sequence[float]) -> int:
    return max(range(len(probs)), key=lambda i: probs[i])


@dataclass(frozen=True)
class ThresholdPolicy:
    """The paper's rule: the top candidate if its probability >= tau, else the foundation."""

    tau: float = 0.5
    name: str = "threshold"
    needs_gate: bool = True

    def select(self, probs: Sequence[float], candidates: Sequence[str]) -> Selection:
        top = _argmax(probs)
        if top != 0 and probs[top] >= self.tau:
            return Selection({candidates[top]: 1.0})
        return Selection({candidates[0]: 1.0})


@dataclass(frozen=True)
class Top1Policy:
    """The most probable candidate, whatever its probability."""

    name: str = "top1"
    needs_gate: bool = True

    def select(self, probs: Sequence[float], candidates: Sequence[str]) -> Selection:
        return Selection({candidates[_argmax(probs)]: 1.0})


@dataclass(frozen=True)
class TopKBlendPolicy:
    """The k most probable candidates, logits blended by their renormalised probabilities."""

    k: int = 2
    name: str = "topk-blend"
    needs_gate: bool = True

    def select(self, probs: Sequence[float], candidates: Sequence[str]) -> Selection:
        order = sorted(range(len(probs)), key=lambda i: probs[i], reverse=True)[: max(1, self.k)]
        total = sum(probs[i] for i in order)
        if total <= 0:
            return Selection({candidates[order[0]]: 1.0})
        return Selection({candidates[i]: probs[i] / total for i in order})


@dataclass(frozen=True)
class FixedPolicy:
    """Always one named candidate (``fixed NAME``); the gate is ignored."""

    expert: str
    name: str = "fixed"
    needs_gate: bool = False

    def select(self, probs: Sequence[float], candidates: Sequence[str]) -> Selection:
        if self.expert not in candidates:
            raise SammoeError(f"policy fixed: no candidate {self.expert!r}; candidates: {', '.join(candidates)}")
        return Selection({self.expert: 1.0})


@dataclass(frozen=True)
class FoundationPolicy:
    """Ignore the experts: the foundation alone."""

    name: str = "foundation"
    needs_gate: bool = False

    def select(self, probs: Sequence[float], candidates: Sequence[str]) -> Selection:
        return Selection({candidates[0]: 1.0})


PolicyFactory = Callable[..., Policy]


class NoOptions(BaseModel):
    """A policy without options."""

    model_config = ConfigDict(extra="forbid")


class ThresholdOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tau: float = Field(0.5, ge=0.0, le=1.0, description="minimum gate probability for an expert")


class TopKOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    k: int = Field(2, ge=1, le=64, description="how many candidates to blend")


class FixedOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expert: str = Field(min_length=1, description="the candidate always used")


# name -> (factory taking the validated options as keywords, options model)
BUILTIN_POLICIES: dict[str, tuple[PolicyFactory, type[BaseModel]]] = {
    "threshold": (lambda tau=0.5: ThresholdPolicy(tau=tau), ThresholdOptions),
    "top1": (lambda: Top1Policy(), NoOptions),
    "topk-blend": (lambda k=2: TopKBlendPolicy(k=k), TopKOptions),
    "fixed": (lambda expert: FixedPolicy(expert=expert), FixedOptions),
    "foundation": (lambda: FoundationPolicy(), NoOptions),
}
