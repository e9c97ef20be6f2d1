"""A small, picklable recipe for a predictor, so each batch worker builds its own model once.

A :class:`PredictorSpec` names either one network (``weights``, a sammoe .safetensors file), the
mixture of experts a bundle holds (``bundle``, a folder ``sammoe bundle`` wrote), or the mixture
of experts the local state describes (foundation in use, enabled experts, current gate, a policy).
:meth:`PredictorSpec.build` is the one place a predictor is made from such settings: the CLI
calls it, and each Ray actor calls it once in its own process (the model never travels through
the object store).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from sammoe_core.errors import InputError, SammoeError

if TYPE_CHECKING:
    from sammoe_core.segmentation.predictor import CropPredictor


@dataclass(frozen=True)
class PredictorSpec:
    """Which model to build, and on which device (``auto``: the GPU Ray or CUDA_VISIBLE_DEVICES gives)."""

    weights: str | None = None
    config: str | None = None
    device: str = "auto"
    policy: str = "threshold"
    policy_options: tuple[tuple[str, Any], ...] = ()  # (option, value) pairs, validated by the policy
    expert: str | None = None
    strict: bool = False
    allow_unverified: bool = False
    bundle: str | None = None  # a folder `sammoe bundle` wrote: its MoE, no plugin or local state needed
    precision: str = "auto"  # 'auto' (bf16 where the hardware computes it natively), 'fp32' or 'bf16'
    crop_batch: int | None = None  # crops encoded in one pass (None: 8 on CUDA, 1 on the CPU)
    cuda_graphs: bool = True  # on CUDA, encoders replayed as captured CUDA graphs

    def on(self, device: str) -> PredictorSpec:
        """The same model on another device."""
        return replace(self, device=device)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def build(self) -> CropPredictor:
        """The predictor: ``weights`` alone, the MoE of ``bundle``, else the MoE from the local registry,
        in the precision :func:`~sammoe_core.devices.choose_precision` picks for ``precision`` on the device,
        encoding :func:`~sammoe_core.segmentation.encoder_runtime.choose_crop_batch` crops at once.

        A stale or missing gate warns (:class:`~sammoe_core.moe.segmenter.StaleGateWarning`) and
        falls back to the foundation, or raises under ``strict``.
        """
        from sammoe_core.devices import choose_precision, resolve_device
        from sammoe_core.segmentation.encoder_runtime import choose_crop_batch

        device = resolve_device(self.device)
        precision = choose_precision(device, self.precision)
        crop_batch = choose_crop_batch(device, self.crop_batch)
        predictor = self._build()
        predictor.precision, predictor.precision_reason = precision  # type: ignore[attr-defined]
        predictor.crop_batch, predictor.cuda_graphs = crop_batch, self.cuda_graphs  # type: ignore[attr-defined]
        return predictor

    def _build(self) -> CropPredictor:
        from pathlib import Path

        from sammoe_core.devices import resolve_device
        from sammoe_core.files.hashing import sha256_file
        from sammoe_core.model.checkpoint import load_model
        from sammoe_core.segmentation.predictor import FoundationPredictor

        dev = resolve_device(self.device)
        if self.bundle is not None:
            if self.weights is not None or self.allow_unverified:
                raise InputError("a bundle holds its own checked weights; leave out the weights and allow_unverified")
            from sammoe_core.deploy.bundle import build_from_bundle

            return build_from_bundle(
                self.bundle, dev, policy=self.policy, policy_options=dict(self.policy_options), expert=self.expert
            )
        if self.weights is None:
            from sammoe_core.moe.segmenter import build_from_registry

            return build_from_registry(
                dev,
                policy=self.policy,
                policy_options=dict(self.policy_options),
                expert=self.expert,
                strict=self.strict,
            )
        if self.expert is not None or self.policy != "threshold" or self.policy_options or self.strict:
            raise InputError(
                "a weights file runs that one network alone; a policy, an expert and strict apply to the "
                "mixture of experts (leave the weights out)"
            )
        try:
            model = load_model(self.weights, config=self.config, device=dev, allow_unverified=self.allow_unverified)
        except KeyError as e:  # an unknown config name given by the caller
            raise SammoeError(f"config {self.config!r}: {e.args[0]}") from None
        source = {"weights": Path(self.weights).name, "weights_sha256": sha256_file(self.weights)}
        return FoundationPredictor(model, source=source)
