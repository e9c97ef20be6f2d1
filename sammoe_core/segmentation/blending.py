"""Blending overlapping crop predictions on the model lattice without seams.

Each crop's probabilities are weighted by a separable sin² window (largest at the crop centre,
small but positive at its faces). Shifted by half a crop, such windows sum to one, so where
crops overlap the blend fades smoothly from one to the next, and where one crop is alone its
prediction passes unchanged. :class:`LatticeAccumulator` holds the weighted sums over a box
that grows as crops are added.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def crop_window(size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(size, size, size) blending weights: the product of sin²(π (i + 0.5) / size) per axis."""
    ramp = torch.sin(math.pi * (torch.arange(size, dtype=torch.float32) + 0.5) / size) ** 2
    ramp = ramp.to(device)
    return ramp[:, None, None] * ramp[None, :, None] * ramp[None, None, :]


class LatticeAccumulator:
    """Weighted sums of crop predictions over the box of lattice indices the crops cover, on the
    device of the first crop added."""

    def __init__(self) -> None:
        self.lower: np.ndarray | None = None
        self.weighted: torch.Tensor | None = None
        self.weights: torch.Tensor | None = None

    def _box(self) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
        """The covered box's lower index, weighted sums and weights."""
        if self.lower is None or self.weighted is None or self.weights is None:
            raise ValueError("no crop was added")
        return self.lower, self.weighted, self.weights

    def _cover(self, start: np.ndarray, shape: tuple[int, ...], device: torch.device) -> None:
        upper = start + np.asarray(shape)
        if self.lower is None or self.weighted is None or self.weights is None:
            self.lower = start.copy()
            self.weighted = torch.zeros(tuple(int(n) for n in shape), device=device)
            self.weights = torch.zeros_like(self.weighted)
            return
        old_upper = self.lower + np.asarray(self.weighted.shape)
        lower, new_upper = np.minimum(self.lower, start), np.maximum(old_upper, upper)
        if np.array_equal(lower, self.lower) and np.array_equal(new_upper, old_upper):
            return
        size = tuple(int(n) for n in new_upper - lower)
        at = tuple(slice(int(a), int(a) + n) for a, n in zip(self.lower - lower, self.weighted.shape))
        weighted, weights = torch.zeros(size, device=device), torch.zeros(size, device=device)
        weighted[at], weights[at] = self.weighted, self.weights
        self.lower, self.weighted, self.weights = lower, weighted, weights

    def add(self, start: np.ndarray, values: torch.Tensor, window: torch.Tensor) -> None:
        """Add one crop's values (S³, starting at lattice index ``start``) with its window."""
        start = np.asarray(start, dtype=np.int64)
        self._cover(start, tuple(values.shape), values.device)
        lower, weighted, weights = self._box()
        at = tuple(slice(int(a), int(a) + n) for a, n in zip(start - lower, values.shape))
        weighted[at] += window * values
        weights[at] += window

    def covered(self, start: np.ndarray, size: int) -> torch.Tensor | None:
        """Which voxels of the S³ block at ``start`` earlier crops reached (None: no crop yet)."""
        if self.lower is None or self.weights is None:
            return None
        start = np.asarray(start, dtype=np.int64)
        inside = torch.zeros((size,) * 3, dtype=torch.bool, device=self.weights.device)
        first = np.maximum(start, self.lower)
        last = np.minimum(start + size, self.lower + np.asarray(self.weights.shape))
        if (last <= first).any():
            return inside
        src = tuple(slice(int(a), int(b)) for a, b in zip(first - self.lower, last - self.lower))
        dst = tuple(slice(int(a), int(b)) for a, b in zip(first - start, last - start))
        inside[dst] = self.weights[src] > 0
        return inside

    def blended(self) -> tuple[torch.Tensor, np.ndarray]:
        """Weighted mean over the covered box (0 where no crop reached) and the box's lower index."""
        lower, weighted, weights = self._box()
        mean = torch.where(weights > 0, weighted / weights.clamp_min(1e-12), 0.0)
        return mean, lower.copy()
