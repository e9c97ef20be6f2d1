"""The official interactive training step: simulated clicks, previous logits as mask prompt.

For each crop the image is encoded once; then ``num_clicks`` decoder steps follow. The first click
is a uniformly random target voxel (or a given one), each later click a uniformly random voxel of
the current error region (false negatives give a positive click, false positives a negative
one). Only the newest click is passed, together with the previous low-res logits (not detached)
as the mask prompt; one random step in [2, 8] and the last step pass no click at all (mask-only
refinement). DiceCE on the crop-size logits is summed over the steps (section 4.2 of the
SAM-Med3D reference).

With ``box_prob`` > 0 (box-capable networks) that share of interactions starts from a box
instead of a click: the target's bounding box in the crop, each corner moved by up to a few
voxels as a user's drag would, passed at every step alongside the newest click (as segmentation
passes a box with the clicks of the first crop).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from sammoe_core.evaluation.metrics import batch_dice
from sammoe_core.model import Sam3D


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


def next_clicks(target: torch.Tensor, pred: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
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


def largest_error_click(
    target: torch.Tensor, pred: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The official evaluation's next click (SAM-Med3D's ``ritm`` rule) for one crop: in the larger
    of the false-negative and false-positive regions, a uniformly random voxel among those deeper
    than half its maximum distance to the region's border. (1, 1, 3) coords, (1, 1) label.

    target, pred: (D, H, W) bool. Without any error, a random target voxel, positive.
    """
    from scipy import ndimage

    fn = (target & ~pred).cpu().numpy()
    fp = (pred & ~target).cpu().numpy()
    positive = fn.sum() >= fp.sum()
    region = fn if positive else fp
    if not region.any():
        coords, labels = next_clicks(target[None], pred[None], gen)
        return coords, labels
    depth = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1, 1:-1]
    deep = torch.from_numpy(depth > depth.max() / 2)
    coords = sample_voxels(deep[None], gen).float()
    return coords[:, None, :], torch.tensor([[int(positive)]])


@dataclass
class InteractionResult:
    loss: torch.Tensor
    dice_first: float  # Dice after the first click (batch mean)
    dice_last: float  # Dice after the last step


BOX_JITTER_VOXELS = 4


def jittered_boxes(target: torch.Tensor, gen: torch.Generator, jitter: int = BOX_JITTER_VOXELS) -> torch.Tensor:
    """(B, 2, 3) box corners (min, max voxel) around each element's target in (B, D, H, W),
    each coordinate moved by up to ``jitter`` voxels; an empty target gets the whole crop."""
    b, *size = target.shape
    boxes = torch.zeros(b, 2, 3)
    for i in range(b):
        idx = torch.nonzero(target[i]).float().cpu()
        lo, hi = (idx.min(0).values, idx.max(0).values) if len(idx) else (torch.zeros(3), torch.tensor(size) - 1.0)
        shift = torch.randint(-jitter, jitter + 1, (2, 3), generator=gen).float()
        boxes[i, 0] = (lo + shift[0]).clamp(0, size[0] - 1)
        boxes[i, 1] = torch.maximum(hi + shift[1], boxes[i, 0]).clamp(0, size[0] - 1)
    return boxes.to(target.device)


def interactive_loss(
    model: Sam3D,
    image: torch.Tensor,
    target: torch.Tensor,
    num_clicks: int,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    gen: torch.Generator,
    first_click: torch.Tensor | None = None,
    box_prob: float = 0.0,
) -> InteractionResult:
    """Summed DiceCE over a simulated interaction on a batch of crops.

    image: (B, 1, S, S, S) normalised; target: (B, 1, S, S, S) float {0, 1}; first_click: optional
    (B, 3) crop voxel of the first positive click; box_prob: chance that the interaction starts
    from a box (box-capable configs).
    """
    embedding = model.encode(image)
    tgt = target[:, 0] > 0.5
    boxes = None
    if box_prob > 0 and float(torch.rand((), generator=gen)) < box_prob:
        boxes = jittered_boxes(tgt, gen)
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
            low = model.decode(embedding, mask_prompt=prev, boxes=boxes)
        elif step == 0 and boxes is not None:
            low = model.decode(embedding, mask_prompt=prev, boxes=boxes)
        else:
            if step == 0 and first_click is not None:
                pts = first_click[:, None, :].float().to(image.device)
                labels = torch.ones(image.shape[0], 1, dtype=torch.long, device=image.device)
            else:
                pts, labels = next_clicks(tgt, pred, gen)
            low = model.decode(embedding, pts, labels, prev, boxes=boxes)
        logits = model.upsample(low)
        total = total + loss_fn(logits, target)
        pred = logits.detach()[:, 0] > 0
        prev = low
        if step == 0:
            dice_first = batch_dice(pred, tgt)
    dice_last = batch_dice(pred, tgt)
    return InteractionResult(total, dice_first, dice_last)
