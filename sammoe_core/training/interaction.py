"""The official interactive training step: simulated clicks, previous logits as mask prompt.

For each crop the image is encoded once; then ``num_clicks`` decoder steps follow. The first click
is a uniformly random target voxel (or a given one), each later click a uniformly random voxel of
the current error region (false negatives give a positive click, false positives a negative
one). Only the newest click is passed, together with the previous low-res logits (not detached)
as the mask prompt; one random step in [2, 8] and the last step pass no click at all (mask-only
refinement). DiceCE on the crop-size logits is summed over the steps (section 4.2 of the
SAM-Med3D reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..metrics import batch_dice
from ..model import Sam3D


def sample_voxels(mask: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A uniformly random True voxel per batch element of (B, D, H, W) -> (B, 3) indices.

    Elements with an empty mask get the crop centre.
    """
    b = mask.shape[0]
    flat = mask.reshape(b, -1)
    scores = torch.rand(flat.shape, generator=gen, device="cpu").to(flat.device) * flat
    idx = scores.argmax(dim=1)
    d, h, w = mask.shape[1:]
    coords = torch.stack([idx // (h * w), (idx // w) % h, idx % w], dim=1)
    empty = ~flat.any(dim=1)
    if empty.any():
        coords[empty] = torch.tensor([d // 2, h // 2, w // 2], device=coords.device)
    return coords


def next_clicks(
    target: torch.Tensor, pred: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clicks in the error region: (B, 1, 3) coords and (B, 1) labels (1 where a false negative).

    target, pred: (B, D, H, W) bool. Where prediction is perfect, a random target voxel, positive.
    """
    fn = target & ~pred
    fp = pred & ~target
    err = fn | fp
    none = ~err.reshape(err.shape[0], -1).any(dim=1)
    if none.any():
        err = err.clone()
        err[none] = target[none]
    coords = sample_voxels(err, gen)
    bi = torch.arange(coords.shape[0], device=coords.device)
    positive = target[bi, coords[:, 0], coords[:, 1], coords[:, 2]]
    return coords[:, None, :].float(), positive.long()[:, None]


@dataclass
class InteractionResult:
    loss: torch.Tensor
    dice_first: float  # Dice after the first click (batch mean)
    dice_last: float  # Dice after the last step


def interactive_loss(
    model: Sam3D,
    image: torch.Tensor,
    target: torch.Tensor,
    num_clicks: int,
    loss_fn,
    gen: torch.Generator,
    first_click: torch.Tensor | None = None,
) -> InteractionResult:
    """Summed DiceCE over a simulated interaction on a batch of crops.

    image: (B, 1, S, S, S) normalised; target: (B, 1, S, S, S) float {0, 1}; first_click: optional
    (B, 3) crop voxel of the first positive click.
    """
    embedding = model.encode(image)
    tgt = target[:, 0] > 0.5
    mask_only = set()
    if num_clicks >= 3:
        lo, hi = 2, min(8, num_clicks - 2)
        if hi >= lo:
            mask_only.add(int(torch.randint(lo, hi + 1, (1,), generator=gen)))
        mask_only.add(num_clicks - 1)
    prev = None
    pred = torch.zeros_like(tgt)
    total = image.new_zeros(())
    dice_first = dice_last = 0.0
    for step in range(num_clicks):
        if step in mask_only and prev is not None:
            low = model.decode(embedding, mask_prompt=prev)
        else:
            if step == 0 and first_click is not None:
                pts = first_click[:, None, :].float().to(image.device)
                labels = torch.ones(image.shape[0], 1, dtype=torch.long, device=image.device)
            else:
                pts, labels = next_clicks(tgt, pred, gen)
            low = model.decode(embedding, pts, labels, prev)
        logits = model.upsample(low)
        total = total + loss_fn(logits, target)
        pred = logits.detach()[:, 0] > 0
        prev = low
        if step == 0:
            dice_first = batch_dice(pred, tgt)
    dice_last = batch_dice(pred, tgt)
    return InteractionResult(total, dice_first, dice_last)
