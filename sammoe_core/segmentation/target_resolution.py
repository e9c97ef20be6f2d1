"""How several targets of one volume share its voxels: each keeps what its own prompts reach.

Each target's prediction is a probability map over a block of the input grid. A target *claims*
the voxels where its probability is above 0.5 that lie in a connected piece (26-connectivity) of
its mask holding one of its positive clicks (for a box: touching the box). Targets are placed in
order; where a new target's claim meets voxels already labelled, the contested voxels are split
into connected pieces: a piece that holds only the new target's click goes to it, a piece that
holds only the other target's click stays, and any other piece goes to the more probable target.
So a leaking mask can no longer eat a neighbour: the neighbour's click sits in the contested piece.
Losing voxels can cut a target apart, so each target then keeps only the pieces its prompts reach
(released voxels go to another claimant, if any), and finally every positive click is labelled
with its own target: no target ever takes another's click (a voxel clicked for several targets goes
to the most probable of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)


@dataclass
class TargetClaim:
    """One target's prediction on a block of the input grid, and where its prompts are."""

    label: int
    block: tuple[slice, slice, slice]
    probability: np.ndarray  # float, the block's shape
    clicks: list[tuple[int, int, int]] = field(default_factory=list)  # positive clicks, input voxels
    box: tuple[np.ndarray, np.ndarray] | None = None  # (lower, upper) input voxel corners

    def points(self) -> list[tuple[int, ...]]:
        """The voxels that stand for this target's prompts: its clicks, else its box's centre."""
        if self.clicks or self.box is None:
            return list(self.clicks)
        return [tuple(int(v) for v in np.rint((self.box[0] + self.box[1]) / 2))]

    def anchors(self, shape: tuple[int, ...]) -> np.ndarray:
        """Boolean block mask of the voxels the prompts name (clicks, or the box's inside)."""
        mark = np.zeros(self.probability.shape, dtype=bool)
        origin = np.array([s.start for s in self.block])
        for click in self.clicks:
            local = np.asarray(click) - origin
            if np.all(local >= 0) and np.all(local < self.probability.shape):
                mark[tuple(local)] = True
        if self.box is not None:
            lo = np.clip(np.floor(self.box[0]).astype(int) - origin, 0, self.probability.shape)
            hi = np.clip(np.ceil(self.box[1]).astype(int) + 1 - origin, 0, self.probability.shape)
            mark[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = True
        return mark


def _reached(mask: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """The connected pieces of ``mask`` that touch ``anchors`` (all of ``mask`` if none does)."""
    from scipy import ndimage

    if not mask.any():
        return mask
    pieces, _ = ndimage.label(mask, structure=_CONNECTIVITY)
    keep = np.unique(pieces[anchors & mask])
    keep = keep[keep > 0]
    if keep.size == 0:
        return mask  # the prompts miss their own mask: nothing to anchor on, keep it as predicted
    return np.isin(pieces, keep)


def _points_in(block: tuple[slice, ...], points: list[tuple[int, ...]], shape: tuple[int, ...]) -> np.ndarray:
    """Boolean block mask marking ``points`` (input voxels) that fall inside ``block``."""
    mark = np.zeros(shape, dtype=bool)
    origin = np.array([s.start for s in block])
    for point in points:
        local = np.asarray(point) - origin
        if np.all(local >= 0) and np.all(local < shape):
            mark[tuple(local)] = True
    return mark


_TAKE, _KEEP, _BY_PROBABILITY = 1, 2, 3


def resolve_targets(
    shape: tuple[int, int, int], claims: list[TargetClaim], dtype: npt.DTypeLike = np.uint8
) -> np.ndarray:
    """The label map of ``claims`` on a grid of ``shape`` (see the module docstring)."""
    from scipy import ndimage

    label_map = np.zeros(shape, dtype=dtype)
    best = np.zeros(shape, dtype=np.float32)
    regions = []
    placed_points: list[tuple[int, ...]] = []  # the prompts of the targets already placed
    for claim in claims:
        anchors = claim.anchors(shape)
        region = _reached(claim.probability > 0.5, anchors)
        regions.append((region, anchors))
        view, best_view = label_map[claim.block], best[claim.block]
        free = region & (view == 0)
        contested = region & (view != 0)
        view[free] = claim.label
        best_view[free] = claim.probability[free]
        if contested.any():
            pieces, count = ndimage.label(contested, structure=_CONNECTIVITY)
            mine = np.zeros(count + 1, dtype=bool)
            mine[pieces[anchors & contested]] = True
            theirs = np.zeros(count + 1, dtype=bool)
            theirs[pieces[_points_in(claim.block, placed_points, contested.shape) & contested]] = True
            decision = np.full(count + 1, _BY_PROBABILITY, dtype=np.int8)
            decision[mine & ~theirs] = _TAKE
            decision[theirs & ~mine] = _KEEP
            verdict = decision[pieces]
            take = contested & ((verdict == _TAKE) | ((verdict == _BY_PROBABILITY) & (claim.probability > best_view)))
            view[take] = claim.label
            best_view[take] = claim.probability[take]
        placed_points.extend(claim.points())
    # a target cut apart by its neighbours keeps the pieces its prompts reach
    for claim, (_, anchors) in zip(claims, regions):
        mine = label_map[claim.block] == claim.label
        released = mine & ~_reached(mine, anchors)
        if not released.any():
            continue
        label_map[claim.block][released] = 0
        best[claim.block][released] = 0
        for other, (other_region, _) in zip(claims, regions):
            inside = None if other is claim else _overlap(claim.block, other.block)
            if inside is None:
                continue
            mine_part, other_part = inside
            take = (
                released[mine_part]
                & other_region[other_part]
                & (other.probability[other_part] > best[claim.block][mine_part])
            )
            label_map[claim.block][mine_part][take] = other.label
            best[claim.block][mine_part][take] = other.probability[other_part][take]
    # every click keeps its own target (a voxel clicked for several goes to the most probable)
    forced = []
    for claim in claims:
        origin = [s.start for s in claim.block]
        for click in claim.clicks:
            if all(0 <= c < n for c, n in zip(click, shape)):
                local = tuple(c - o for c, o in zip(click, origin))
                in_block = all(0 <= v < n for v, n in zip(local, claim.probability.shape))
                forced.append((float(claim.probability[local]) if in_block else 0.0, claim.label, click))
    for _, label, click in sorted(forced, key=lambda f: f[0]):
        label_map[click] = label
    return label_map


def _overlap(a: tuple[slice, ...], b: tuple[slice, ...]) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    """The common part of two blocks, as slices into ``a``'s and into ``b``'s arrays."""
    lo = [max(x.start, y.start) for x, y in zip(a, b)]
    hi = [min(x.stop, y.stop) for x, y in zip(a, b)]
    if any(h <= lo_ for lo_, h in zip(lo, hi)):
        return None
    in_a = tuple(slice(lo_ - x.start, h - x.start) for lo_, h, x in zip(lo, hi, a))
    in_b = tuple(slice(lo_ - y.start, h - y.start) for lo_, h, y in zip(lo, hi, b))
    return in_a, in_b
