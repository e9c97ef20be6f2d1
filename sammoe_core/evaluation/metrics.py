"""Overlap metrics shared by training, gate training and evaluation."""

from __future__ import annotations

import torch


def dice(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Dice of two boolean masks of the same shape; 1.0 when both are empty."""
    total = int(pred.sum()) + int(target.sum())
    return 1.0 if total == 0 else 2 * int((pred & target).sum()) / total


def batch_dice(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean Dice over the first axis of two boolean (B, ...) masks (an empty pair counts 0)."""
    inter = (pred & target).flatten(1).sum(1).float()
    total = pred.flatten(1).sum(1).float() + target.flatten(1).sum(1).float()
    return (2 * inter / total.clamp(min=1)).mean().item()


def dice_per_item(pred: torch.Tensor, target: torch.Tensor) -> list[float]:
    """Dice of each pair along the first axis of two boolean (B, ...) masks, on their device,
    equal to :func:`dice` of each pair (1.0 when both are empty); one transfer for the batch."""
    # whole-tensor sums per item: a (B, N) reduction along N is several times slower on a CPU
    counts = torch.stack([torch.stack([(p & t).sum(), p.sum() + t.sum()]) for p, t in zip(pred, target)])
    return [1.0 if t == 0 else 2 * i / t for i, t in counts.tolist()]
