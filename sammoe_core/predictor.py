"""The seam between geometry and networks: something that segments one prepared crop.

Segmentation code (cropping, edge extension, paste-back) talks only to a :class:`CropPredictor`.
The plain foundation model is one (:class:`FoundationPredictor`); the mixture of experts is
another. A predictor encodes a crop once and then decodes any number of prompts on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from .model import Sam3D, SamConfig
from .preprocessing import Preprocessing


@dataclass
class CropPrediction:
    """Low-res logits (1, 1, L, L, L) for one prompt set, plus JSON-able facts (e.g. routing)."""

    low_res_logits: torch.Tensor
    info: dict[str, Any] = field(default_factory=dict)


class CropPredictor(Protocol):
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
    ) -> CropPrediction:
        """Prompts in crop-voxel coordinates (tensor-axis order) -> prediction for that crop."""

    def upsample(self, low_res_logits: torch.Tensor) -> torch.Tensor:
        """Low-res logits -> (1, 1, S, S, S) crop logits."""

    # Optional: ``start_target()`` is called before each target's first crop, when defined.


class FoundationPredictor:
    """A single :class:`Sam3D` network as a :class:`CropPredictor`."""

    def __init__(
        self, model: Sam3D, preprocessing: Preprocessing | None = None, source: dict[str, str] | None = None
    ) -> None:
        self.model = model
        self.config = model.config
        self.preprocessing = preprocessing or Preprocessing(crop_size=model.config.image_size)
        self.source = dict(source or {})

    def describe(self) -> dict[str, Any]:
        """JSON-able facts for reports: the network config and where its weights came from."""
        return {"predictor": "foundation", "config": self.config.name, "device": str(self.model.device), **self.source}

    @torch.no_grad()
    def encode(self, crop: torch.Tensor) -> torch.Tensor:
        return self.model.encode(crop.to(self.model.device))

    @torch.no_grad()
    def decode(self, state, points, point_labels, mask_prompt=None, boxes=None) -> CropPrediction:
        dev = self.model.device
        mv = lambda t: None if t is None else t.to(dev)  # noqa: E731
        logits = self.model.decode(state, mv(points), mv(point_labels), mv(mask_prompt), mv(boxes))
        return CropPrediction(logits)

    @torch.no_grad()
    def upsample(self, low_res_logits: torch.Tensor) -> torch.Tensor:
        return self.model.upsample(low_res_logits)
