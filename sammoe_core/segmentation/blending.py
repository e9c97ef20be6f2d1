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


def crop_window(size: int) -> torch.Tensor:
    """(size, size, size) blending weights: the product of sin²(π (i + 0.5) / size) per axis."""
    ramp = torch.sin(math.pi * (torch.arange(size, dtype=torch.float32) + 0.5) / size) ** 2
    return ramp[:, None, None] * ramp[None, :, None] * ramp[None, None, :]


class LatticeAccumulator:
    """Weighted sums of crop predictions over the box of lattice indices the crops cover."""

    def __init__(self) -> None:
        self.lower: np.ndarray | None = None
        self.weighted: torch.Tensor | None = None
        self.weights: torch.Tensor | None = None

    def _box(self) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
        """The covered box's lower index, weighted sums and weights."""
        if self.lower is None or self.weighted is None or self.weights is None:
            raise ValueError("no crop was added")
        return self.lower, self.weighted, self.weights

    def _cover(self, start: np.ndarray, shape: tuple[int, ...]) -> None:
        upper = start + np.asarray(shape)
        if self.lower is None or self.weighted is None or self.weights is None:
            self.lower = start.copy()
            self.weighted = torch.zeros(tuple(int(n) for n in shape))
            self.weights = torch.zeros_like(self.weighted)
            return
        old_upper = self.lower + np.asarray(self.weighted.shape)
        lower, new_upper = np.minimum(self.lower, start), np.maximum(old_upper, upper)
        if np.array_equal(lower, self.lower) and np.array_equal(new_upper, old_upper):
            return
        size = tuple(int(n) for n in new_upper - lower)
        at = tuple(slice(int(a), int(a) + n) for a, n in zip(self.lower - lower, self.weighted.shape))
        weighted, weights = torch.zeros(size), torch.zeros(size)
        weighted[at], weights[at] = self.weighted, self.weights
        self.lower, self.weighted, self.weights = lower, weighted, weights

    def add(self, start: np.ndarray, values: torch.Tensor, window: torch.Tensor) -> None:
        """Add one crop's values (S³, starting at lattice index ``start``) with its window."""
        start = np.asarray(start, dtype=np.int64)
        self._cover(start, tuple(values.shape))
        lower, weighted, weights = self._box()
        at = tuple(slice(int(a), int(a) + n) for a, n in zip(start - lower, values.shape))
        weighted[at] += window * values
        weights[at] += window

    def blended(self) -> tuple[torch.Tensor, np.ndarray]:
        """Weighted mean over the covered box (0 where no crop reached) and the box's lower index."""
        lower, weighted, weights = self._box()
        mean = torch.where(weights > 0, weighted / weights.clamp_min(1e-12), 0.0)
        return mean, lower.copy()
