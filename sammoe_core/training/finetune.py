"""Making an expert: finetune the foundation on labelled volumes, keep only what changed.

The run uses the foundation's own weights as its start and the official interactive recipe
(simulated clicks, previous logits as mask prompt, DiceCE), trains the chosen parts (``decoder``:
prompt encoder + mask decoder, the image encoder frozen so its pass can be shared; or ``all``),
and writes an expert folder: ``model.safetensors`` holding only the tensors that differ from the
foundation, and ``expert.json``. Interrupted runs resume from their run folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sammoe_core import __version__
from sammoe_core.errors import SammoeError
from sammoe_core.training.loop import DataSource, TrainConfig, train

if TYPE_CHECKING:
    from sammoe_core.experts.expert import Expert


@dataclass(frozen=True)
class FinetuneReport:
    """A finished finetune: the saved expert and its training run (steps, CPU and wall seconds)."""

    expert: Expert
    steps: int
    cpu_seconds: float
    wall_seconds: float
    run_dir: Path

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``sammoe finetune`` prints."""
        return {
            "expert": self.expert.name,
            "folder": str(self.expert.folder),
            "steps": self.steps,
            "cpu_seconds": self.cpu_seconds,
            "wall_seconds": self.wall_seconds,
            "weights": str(self.run_dir / "model.safetensors"),
        }


def finetune_expert(
    data: Sequence[str | Path],
    name: str,
    out_dir: str | Path,
    classes: Sequence[str],
    *,
    parts: str = "decoder",
    foundation: str | None = None,
    steps: int = 1000,
    batch_size: int = 2,
    lr: float = 1e-4,
    num_clicks: int = 5,
    device: str = "auto",
    seed: int = 0,
    run_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    calibration: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
    synthesis: bool = False,
    box_prob: float | None = None,
    **manifest_fields: Any,
) -> FinetuneReport:
    """Finetune, then save the expert folder; returns the expert and the run's figures.

    ``manifest_fields``: version, description, modality, license, authors (defaults filled in).
    ``calibration``: a labelled dataset folder copied into the expert for gate training.
    ``synthesis``: train on images synthesised from the label (and tissue) maps with random
    contrasts (:mod:`.synthesis`) instead of the stored images. ``box_prob``: share of box-started
    interactions (default: 0.25 on a box-capable foundation, else 0).
    """
    from sammoe_core.experts.expert import save_expert
    from sammoe_core.experts.foundations import resolve_foundation
    from sammoe_core.experts.weights import make_delta
    from sammoe_core.model import get_config
    from sammoe_core.model.checkpoint import load_weights

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise SammoeError(f"{out}: exists and is not empty (pass --overwrite to replace it)")
    if not classes:
        raise SammoeError("finetune needs the classes the expert is for (--classes)")
    if calibration is not None:
        from sammoe_core.io.datasets import LabelledDataset

        LabelledDataset(calibration)  # a bad calibration set fails now, not after training
    spec = resolve_foundation(foundation)
    cfg = TrainConfig(
        config=spec.config,
        init_weights=str(spec.weights),
        init_sha256=spec.sha256,
        parts=parts,
        data=[DataSource(path=str(d), classes=list(classes)) for d in data],
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        warmup_steps=min(50, max(1, steps // 10)),
        num_clicks=num_clicks,
        seed=seed,
        device=device,
        synthesis=synthesis,
        box_prob=(0.25 if get_config(spec.config).box_prompts else 0.0) if box_prob is None else box_prob,
    )
    run = Path(run_dir) if run_dir else out.with_name(out.name + ".run")
    if cache_dir is None:
        from sammoe_core.experts.registry import Registry

        cache_dir = Registry().layout.volume_cache
    summary = train(cfg, run, cache_dir=cache_dir, progress=progress)
    tuned, _ = load_weights(Path(summary["weights"]))
    base, _ = load_weights(spec.weights, expected_sha256=spec.sha256)
    delta = make_delta(base, tuned, parts)
    fields = {
        "version": "0.1.0",
        "description": f"{', '.join(classes)} expert finetuned from {spec.name}",
        "modality": "any",
        "license": "Apache-2.0",
        "authors": ("unknown",),
        "min_sammoe_version": __version__,
        **manifest_fields,
    }
    if spec.hub_id:
        fields.setdefault("foundation", {"hub_id": spec.hub_id})
    if calibration is not None:
        fields["calibration"] = {"path": "calibration", "classes": list(classes)}
    expert = save_expert(
        out,
        delta,
        get_config(spec.config),
        spec.sha256,
        parts,
        overwrite=overwrite,
        name=name,
        targets=[{"name": c} for c in classes],
        preprocessing=cfg.preprocessing,
        **fields,
    )
    if calibration is not None:
        staging = out / ".calibration.part"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(calibration, staging)
        shutil.rmtree(out / "calibration", ignore_errors=True)
        staging.rename(out / "calibration")
    return FinetuneReport(
        expert=expert,
        steps=int(summary["steps"]),
        cpu_seconds=float(summary["cpu_seconds"]),
        wall_seconds=float(summary["wall_seconds"]),
        run_dir=run,
    )
