"""The seam between geometry and networks: something that segments one prepared crop.

Segmentation code (cropping, edge extension, paste-back) talks only to a :class:`CropPredictor`.
The plain foundation model is one (:class:`FoundationPredictor`); the mixture of experts is
another. A predictor encodes a crop once and then decodes any number of prompts on it.

Routing is explicit state owned by the caller: a decode returns the :class:`Route` it took (the
MoE's choice of candidates; None for a single network), and the caller passes that route back
into every later decode of the same target (further clicks, extra crops of edge extension), so
one structure is segmented by one consistent model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from sammoe_core.devices import Precision, autocast
from sammoe_core.model import Sam3D, SamConfig
from sammoe_core.segmentation.encoder_runtime import EncoderRunners
from sammoe_core.segmentation.preprocessing import Preprocessing


@dataclass(frozen=True)
class Route:
    """Which candidates segment a target: blend weights by name, and the gate's probabilities
    when a gate chose them."""

    weights: dict[str, float]
    probabilities: dict[str, float] | None = None
    policy: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"policy": self.policy, "chosen": {k: round(v, 4) for k, v in self.weights.items()}}
        if self.probabilities is not None:
            out["gate"] = {k: round(v, 4) for k, v in self.probabilities.items()}
        return out


@dataclass
class CropPrediction:
    """Low-res logits (1, 1, L, L, L) for one prompt set, the route taken (None for a single
    network), and JSON-able facts for the sidecar."""

    low_res_logits: torch.Tensor
    info: dict[str, Any] = field(default_factory=dict)
    route: Route | None = None


class CropPredictor(Protocol):
    """What segmentation needs of a network. A predictor may also have a ``device`` attribute:
    the crops are then sampled, blended and pasted back there (the CPU otherwise). The predictors
    here also have ``precision`` ('fp32', the exact default, or 'bf16' autocast for the networks;
    the gate always runs in fp32) and ``precision_reason``, which
    :class:`~sammoe_core.segmentation.predictor_spec.PredictorSpec` sets, ``cuda_graphs`` (encoders
    replayed as CUDA graphs on CUDA), ``crop_batch``: how many crops segmentation encodes at once,
    and ``encode_batch((B, 1, S, S, S) crops) -> [state per crop]`` to encode them in one pass
    (without it, or with ``crop_batch`` 1, each crop gets its own ``encode``)."""

    config: SamConfig
    preprocessing: Preprocessing

    def encode(self, crop: torch.Tensor) -> Any:
        """(1, 1, S, S, S) normalised crop -> opaque per-crop state (embeddings)."""

    def decode(
        self,
        state: Any,
        points: torch.Tensor | None,
        point_labels: torch.Tensor | None,
        mask_prompt: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        route: Route | None = None,
    ) -> CropPrediction:
        """Prompts in crop-voxel coordinates (tensor-axis order) -> prediction for that crop.
        ``route``: the route an earlier decode of the same target returned (None: choose one)."""

    def upsample(self, low_res_logits: torch.Tensor) -> torch.Tensor:
        """Low-res logits -> (1, 1, S, S, S) crop logits."""

    def describe(self) -> dict[str, Any]:
        """JSON-able facts for reports and sidecars (network, weights hashes, device)."""


class FoundationPredictor:
    """A single :class:`Sam3D` network as a :class:`CropPredictor`."""

    def __init__(
        self, model: Sam3D, preprocessing: Preprocessing | None = None, source: dict[str, str] | None = None
    ) -> None:
        self.model = model
        self.config = model.config
        self.preprocessing = preprocessing or Preprocessing(crop_size=model.config.image_size)
        self.source = dict(source or {})
        self.precision: Precision = "fp32"
        self.precision_reason = "the exact mode"
        self.cuda_graphs = True
        self.crop_batch = 1
        self._runners = EncoderRunners()

    @property
    def device(self) -> torch.device:
        return self.model.device

    def describe(self) -> dict[str, Any]:
        """JSON-able facts for reports: the network config and where its weights came from."""
        return {
            "predictor": "foundation",
            "config": self.config.name,
            "device": str(self.model.device),
            "precision": self.precision,
            "precision_reason": self.precision_reason,
            **self._runners.describe("foundation", self.device, self.precision, self.cuda_graphs),
            "crop_batch": self.crop_batch,
            **self.source,
        }

    @torch.no_grad()
    def encode(self, crop: torch.Tensor) -> torch.Tensor:
        return self._runners.get("foundation", self.model, self.precision, self.cuda_graphs)(crop)

    @torch.no_grad()
    def encode_batch(self, crops: torch.Tensor) -> list[torch.Tensor]:
        embeddings = self.encode(crops)
        return [embeddings[i : i + 1] for i in range(embeddings.shape[0])]

    @torch.no_grad()
    def decode(
        self,
        state: torch.Tensor,
        points: torch.Tensor | None,
        point_labels: torch.Tensor | None,
        mask_prompt: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        route: Route | None = None,
    ) -> CropPrediction:
        dev = self.model.device

        def mv(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(dev)

        with autocast(self.device, self.precision):
            logits = self.model.decode(state, mv(points), mv(point_labels), mv(mask_prompt), mv(boxes))
        return CropPrediction(logits.float())

    @torch.no_grad()
    def upsample(self, low_res_logits: torch.Tensor) -> torch.Tensor:
        return self.model.upsample(low_res_logits)
