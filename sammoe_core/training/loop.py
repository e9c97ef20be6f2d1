"""The training loop shared by foundation training and ``sammoe finetune``: resumable, logged.

A run lives in one folder: ``run.json`` (the :class:`TrainConfig`), ``log.jsonl`` (one line per
logged step), ``checkpoint/`` (weights, optimizer, step and CPU time, rewritten atomically every
few minutes) and, at the end, ``model.safetensors``. Starting a run whose folder holds a
checkpoint continues from it; samples are drawn from per-step seeds, so a resumed run sees the
same data it would have seen.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sammoe_core.errors import SammoeError
from sammoe_core.files.atomic import write_text_atomic
from sammoe_core.model import Sam3D, get_config
from sammoe_core.model.checkpoint import load_model, save_weights
from sammoe_core.segmentation.preprocessing import Preprocessing

if TYPE_CHECKING:
    from sammoe_core.training.data import CropSampler

Parts = Literal["all", "decoder"]


class DataSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    classes: list[str] | None = None
    weight: float = Field(1.0, gt=0, description="relative sampling weight of this dataset")


class TrainConfig(BaseModel):
    """Everything that defines a training run (saved as run.json)."""

    model_config = ConfigDict(extra="forbid")

    config: str = "sammoe-small"
    init_weights: str | None = Field(None, description="start from these weights (finetuning)")
    init_sha256: str | None = Field(None, description="their sha256 (checked; part of the run's identity)")
    parts: Parts = Field("all", description="'all', or 'decoder' (prompt encoder + mask decoder; encoder frozen)")
    data: list[DataSource]
    steps: int = 2000
    batch_size: int = 2
    lr: float = 3e-4
    decoder_lr_factor: float = Field(1.0, description="official recipe uses 0.1 for prompt encoder and decoder")
    weight_decay: float = 0.1
    warmup_steps: int = 100
    num_clicks: int = 5
    augment: bool = True
    synthesis: bool = Field(
        False, description="synthesise images from label (and tissue) maps with random contrasts (SynthSeg-style)"
    )
    box_prob: float = Field(
        0.0, ge=0, le=1, description="share of interactions that start from a box (box configs only)"
    )
    seed: int = 0
    device: str = "auto"
    checkpoint_every_s: float = 300.0
    max_wall_s: float | None = Field(None, description="stop early (and save) after this many seconds")
    log_every: int = 10
    workers: int = 1
    threads: int | None = Field(
        None, description="torch threads of the training process (default: CPU cores minus data workers, at least 1)"
    )
    preprocessing: Preprocessing = Preprocessing()

    @model_validator(mode="after")
    def _crop_fits_network(self) -> TrainConfig:
        if self.box_prob > 0 and not get_config(self.config).box_prompts:
            raise ValueError(f"box_prob > 0 needs a box-capable config; {self.config!r} has no box embeddings")
        size = get_config(self.config).image_size
        if self.preprocessing.crop_size != size:
            self.preprocessing = self.preprocessing.model_copy(update={"crop_size": size})
        return self


def _trainable(model: Sam3D, parts: Parts) -> tuple[list[torch.nn.Parameter], list[torch.nn.Parameter]]:
    """(image-encoder parameters, other parameters) that train for ``parts``; the rest freeze."""
    from sammoe_core.experts.weights import part_prefixes

    prefixes = part_prefixes(parts)
    encoder: list[torch.nn.Parameter] = []
    other: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if name.startswith(prefixes):
            (encoder if name.startswith("image_encoder.") else other).append(p)
    return encoder, other


class _Samples(torch.utils.data.IterableDataset[tuple[int, dict[str, torch.Tensor]]]):
    def __init__(self, sampler: CropSampler, seed: int, start: int, batch: int) -> None:
        self.sampler, self.seed, self.start, self.batch = sampler, seed, start, batch

    def __iter__(self) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
        # Each worker makes every num_workers-th step; the DataLoader interleaves them in order.
        info = torch.utils.data.get_worker_info()
        step, stride = (self.start + info.id, info.num_workers) if info else (self.start, 1)
        while True:
            items = [self.sampler.sample(_seed(self.seed, step, i)) for i in range(self.batch)]
            yield step, {k: torch.stack([it[k] for it in items]) for k in items[0]}
            step += stride


def _seed(*parts: object) -> int:
    """A stable 31-bit seed from parts (Python's hash() of strings changes between processes)."""
    import hashlib

    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def build_sampler(cfg: TrainConfig, cache_dir: Path) -> CropSampler:
    """Prepare every data source and weight it: each source's pairs share its ``weight``."""
    from sammoe_core.training.data import CropSampler, prepare_dataset

    cases = []
    for src in cfg.data:
        prepared = prepare_dataset(src.path, cache_dir, cfg.preprocessing, src.classes, cfg.seed)
        pairs = sum(len(c.class_voxels) for c in prepared)
        for c in prepared:
            c.weight = src.weight / max(1, pairs)
        cases.extend(prepared)
    return CropSampler(cases, cfg.preprocessing, augment=cfg.augment, synthesis=cfg.synthesis)


# How a run is executed, not what it computes: these may change when a run is resumed.
_EXECUTION_FIELDS = {"device", "workers", "threads", "checkpoint_every_s", "log_every", "max_wall_s"}


def _identity(cfg: TrainConfig) -> dict[str, Any]:
    exclude = _EXECUTION_FIELDS | ({"init_weights"} if cfg.init_sha256 else set())
    return cfg.model_dump(exclude=exclude)


def _lr_factor(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train(
    cfg: TrainConfig, run_dir: str | Path, cache_dir: str | Path | None = None, progress: bool = True
) -> dict[str, Any]:
    """Run (or resume) a training run in ``run_dir``; returns a summary dict."""
    from monai.losses import DiceCELoss

    from sammoe_core.devices import resolve_device
    from sammoe_core.training.interaction import interactive_loss

    run = Path(run_dir)
    ckpt = run / "checkpoint"
    saved = run / "run.json"
    if saved.exists() and _identity(TrainConfig.model_validate_json(saved.read_text())) != _identity(cfg):
        raise SammoeError(f"{run}: holds a different training run (run.json differs); use a new folder")
    fresh = not run.exists()
    try:  # the data first: a bad dataset fails before the run folder is made
        sampler = build_sampler(cfg, Path(cache_dir or run / "cache"))
    except BaseException:
        if fresh:
            shutil.rmtree(run, ignore_errors=True)
        raise
    run.mkdir(parents=True, exist_ok=True)
    write_text_atomic(saved, cfg.model_dump_json(indent=2), overwrite=True)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    # Oversubscribed cores make OpenMP threads wait on each other: leave the data workers theirs.
    torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) - cfg.workers))

    start, cpu_before, wall_before = 0, 0.0, 0.0
    last = _last_checkpoint(ckpt)
    if last is not None:
        model = load_model(last / "model.safetensors", device=device)
        state = json.loads((last / "state.json").read_text())
        start, cpu_before, wall_before = state["step"], state["cpu_seconds"], state.get("wall_seconds", 0.0)
        _truncate_log(run / "log.jsonl", start)
    elif cfg.init_weights:
        model = load_model(cfg.init_weights, device=device, expected_sha256=cfg.init_sha256)
    else:
        model = Sam3D(get_config(cfg.config)).to(device)
    model.train()
    enc_params, other_params = _trainable(model, cfg.parts)
    trainable = {id(p) for p in enc_params + other_params}
    for p in model.parameters():
        p.requires_grad_(id(p) in trainable)
    groups: list[dict[str, Any]] = [{"params": enc_params, "lr": cfg.lr}] if enc_params else []
    groups.append({"params": other_params, "lr": cfg.lr * cfg.decoder_lr_factor})
    for g in groups:
        g["base_lr"] = g["lr"]
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    if last is not None:
        opt.load_state_dict(torch.load(last / "optimizer.pt", map_location=device, weights_only=True))

    loader = torch.utils.data.DataLoader(
        _Samples(sampler, cfg.seed, start, cfg.batch_size),
        batch_size=None,
        num_workers=cfg.workers,
        prefetch_factor=2 if cfg.workers else None,
        persistent_workers=False,
    )
    loss_fn = DiceCELoss(sigmoid=True, squared_pred=True)
    gen = torch.Generator().manual_seed(_seed(cfg.seed, "clicks", start))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=start, desc="training", unit="step")
    cpu0, last_ckpt = time.process_time(), time.monotonic()
    wall0 = last_ckpt

    def clocks() -> tuple[float, float]:
        return cpu_before + time.process_time() - cpu0, wall_before + time.monotonic() - wall0

    log = open(run / "log.jsonl", "a", encoding="utf-8")
    done = start
    window: list[tuple[float, float, float]] = []
    try:
        for step, batch in loader:
            if step >= cfg.steps or (cfg.max_wall_s is not None and clocks()[1] > cfg.max_wall_s):
                break
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * _lr_factor(step, cfg)
            res = interactive_loss(
                model,
                batch["image"].to(device),
                batch["target"].to(device),
                cfg.num_clicks,
                loss_fn,
                gen,
                first_click=batch["first_click"],
                box_prob=cfg.box_prob,
            )
            opt.zero_grad(set_to_none=True)
            res.loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
            opt.step()
            done = step + 1
            window.append((res.loss.item() / cfg.num_clicks, res.dice_first, res.dice_last))
            if bar is not None:
                bar.update(1)
            if (step + 1) % cfg.log_every == 0:
                n = len(window)
                rec = {
                    "step": step + 1,
                    "loss": sum(w[0] for w in window) / n,
                    "dice_first": sum(w[1] for w in window) / n,
                    "dice_last": sum(w[2] for w in window) / n,
                    "lr": opt.param_groups[-1]["lr"],
                    "cpu_seconds": clocks()[0],
                    "wall_seconds": clocks()[1],
                }
                log.write(json.dumps(rec) + "\n")
                log.flush()
                window.clear()
                if bar is not None:
                    bar.set_postfix(loss=f"{rec['loss']:.3f}", dice1=f"{rec['dice_first']:.2f}")
            if time.monotonic() - last_ckpt > cfg.checkpoint_every_s:
                _checkpoint(model, opt, ckpt, done, *clocks())
                last_ckpt = time.monotonic()
    finally:
        log.close()
        if bar is not None:
            bar.close()
    cpu_total, wall_total = clocks()
    _checkpoint(model, opt, ckpt, done, cpu_total, wall_total)
    save_weights(
        model.state_dict(),
        run / "model.safetensors",
        model.config,
        metadata={"train_steps": str(done), "train_cpu_seconds": f"{cpu_total:.0f}"},
        overwrite=True,
    )
    return {
        "steps": done,
        "cpu_seconds": cpu_total,
        "wall_seconds": wall_total,
        "weights": str(run / "model.safetensors"),
    }


def _checkpoint(
    model: Sam3D, opt: torch.optim.Optimizer, folder: Path, step: int, cpu_seconds: float, wall_seconds: float
) -> None:
    """Weights, optimizer and step written as one unit: into a new folder, then swapped in."""
    import shutil

    new, old = folder.with_name(folder.name + ".new"), folder.with_name(folder.name + ".old")
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    save_weights(model.state_dict(), new / "model.safetensors", model.config, overwrite=True)
    torch.save(opt.state_dict(), new / "optimizer.pt")
    state = {"step": step, "cpu_seconds": cpu_seconds, "wall_seconds": wall_seconds}
    (new / "state.json").write_text(json.dumps(state))
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    new.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def _last_checkpoint(folder: Path) -> Path | None:
    """The checkpoint folder, or the previous one if a swap was interrupted."""
    for candidate in (folder, folder.with_name(folder.name + ".old")):
        if (candidate / "state.json").exists():
            return candidate
    return None


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines past the checkpoint a run resumes from (they will be logged again)."""
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    write_text_atomic(path, "".join(line + "\n" for line in keep), overwrite=True)
