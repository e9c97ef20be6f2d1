"""One-model segmentation of one volume: crops around prompts, clicks, edge extension, paste-back.

:func:`segment` talks to the network only through a :class:`~sammoe_core.segmentation.predictor.CropPredictor`
(the foundation model, or later the mixture of experts). For each target:

1. its prompts are checked against the volume and put on a lattice with the input's closest-RAS
   axes at the predictor's spacing, index 0 on the box centre or first positive click;
2. an S³ crop of that lattice centred there is sampled from the input (trilinear, 0 outside),
   CT-clamped when the volume is CT, and z-scored over its voxels > 0;
3. the predictor encodes the crop once and decodes once per click, each time with the previous
   low-res logits as the mask prompt (the first with none: the official all-zero prompt);
4. where the mask touches a crop face that has more volume behind it, a half-overlapping crop in
   that direction is added (it gets the prompts it holds, and the previous crop's logits, shifted,
   as its mask prompt), up to ``max_crops``; the crops are blended with smooth weights. An added
   crop extends no further when it adds almost nothing (its new voxels hold under
   ``MIN_GAIN`` of the mask so far) or when its growth is implausible (it floods more than
   ``FLOOD_FILL`` of its new voxels while the crop it extends held a mask filling under
   ``FLOOD_PARENT_FILL`` of its own): both are recorded in its crop record;
5. the blend is sampled back onto the input grid: nearest neighbour for the label map, linear for
   the optional probabilities. Several targets share the voxels as
   :mod:`~sammoe_core.segmentation.target_resolution` says.

Sampling, blending and paste-back run on the predictor's device (the volume goes there once);
only the finished label block comes back to the host.

:func:`segment` runs all of that for a set of targets; :func:`prepare`, :func:`segment_target` and
:func:`assemble` are its three steps, which the interactive
:class:`~sammoe_core.segmentation.session.Session` reuses to redo one target at a time with cached
crop embeddings. :func:`write_result` (in :mod:`sammoe_core.io.outputs`) writes a
:class:`SegmentationResult`.
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
import torch
from tqdm import tqdm

from sammoe_core import __version__
from sammoe_core.errors import SammoeError
from sammoe_core.io.volumes import Lattice, Volume, as_volume, input_extent, resample
from sammoe_core.segmentation.blending import LatticeAccumulator, crop_window
from sammoe_core.segmentation.crop_feed import CropFeed, PlannedCrop
from sammoe_core.segmentation.intensity import Modality, ModalityDecision, decide_modality, normalize_crop
from sammoe_core.segmentation.predictor import CropPredictor, Route
from sammoe_core.segmentation.preprocessing import Preprocessing
from sammoe_core.segmentation.prompts import (
    PromptError,
    ResolvedClick,
    ResolvedTarget,
    Target,
    clicks_in_crop,
    make_targets,
    resolve_target,
)
from sammoe_core.segmentation.target_resolution import TargetClaim, resolve_targets

ClickPolicy = Literal["all", "newest"]
DEFAULT_MAX_CROPS = 27
MIN_GAIN = 0.01  # an added crop whose new voxels hold less of the mask so far extends no further
FLOOD_FILL = 0.9  # an added crop filling more of its new voxels than this ...
FLOOD_PARENT_FILL = 0.25  # ... from a crop filled less than this is a leak: it extends no further
_FACES = ("R", "A", "S")


@dataclass
class TargetResult:
    """What happened for one target: prompts, crops, predictor facts, size, timings."""

    name: str
    label: int
    clicks: list[ResolvedClick]
    box: dict[str, Any] | None
    box_handling: str | None
    crops: list[dict[str, Any]]
    crops_truncated: bool
    timings: dict[str, float]
    voxel_count: int = 0
    volume_ml: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "clicks": [c.to_dict() for c in self.clicks],
            **({"box": self.box, "box_handling": self.box_handling} if self.box else {}),
            "voxel_count": self.voxel_count,
            "volume_ml": round(self.volume_ml, 3),
            "crops": self.crops,
            "crops_truncated": self.crops_truncated,
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
        }


@dataclass
class SegmentationResult:
    """A label map on the input grid, optional probabilities, and the record of how it was made."""

    volume: Volume
    label_map: np.ndarray
    probabilities: np.ndarray | None
    targets: list[TargetResult]
    modality: ModalityDecision
    model: dict[str, Any]
    settings: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sammoe_version": __version__,
            "input": self.volume.source,
            "shape": list(self.volume.shape),
            "labels": {str(t.label): t.name for t in self.targets},
            "modality": self.modality.to_dict(),
            **({"model": self.model} if self.model else {}),
            "settings": self.settings,
            "targets": [t.to_dict() for t in self.targets],
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
            "runtime": {"torch": torch.__version__, "torch_threads": torch.get_num_threads()},
        }

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)


@dataclass
class _PastedTarget:
    """One target's blended prediction sampled onto a block of the input grid."""

    block: tuple[slice, slice, slice]
    nearest: np.ndarray
    linear: np.ndarray | None


def device_of(predictor: CropPredictor) -> torch.device:
    """Where the predictor computes (its ``device`` attribute; the CPU for predictors without one)."""
    return torch.device(getattr(predictor, "device", "cpu"))


def _extension_stop(
    new_mask: int, new_voxels: int, fill: float, mask_so_far: int, parent_fill: float | None
) -> str | None:
    """Why an added crop (``parent_fill`` not None) extends no further, or None; ``fill`` is
    ``new_mask / new_voxels``."""
    if parent_fill is None or new_voxels == 0:
        return None
    if new_mask < MIN_GAIN * max(mask_so_far, 1):
        return f"adds {new_mask} mask voxels, under {MIN_GAIN:.0%} of the {mask_so_far} so far"
    if fill > FLOOD_FILL and parent_fill < FLOOD_PARENT_FILL:
        return (
            f"implausible growth: fills {fill:.0%} of its new voxels, the crop it extends {parent_fill:.0%} of its own"
        )
    return None


def _box_capable(predictor: CropPredictor) -> bool:
    return bool(getattr(getattr(predictor, "config", None), "box_prompts", False))


def _decode_steps(
    points: np.ndarray, labels: np.ndarray, policy: ClickPolicy
) -> list[tuple[torch.Tensor | None, torch.Tensor | None]]:
    """(points, labels) tensors for each decode call on one crop, per the click policy."""
    if len(points) == 0:
        return [(None, None)]
    p = torch.as_tensor(points, dtype=torch.float32)[None]
    lab = torch.as_tensor(labels, dtype=torch.int64)[None]
    if policy == "all":
        return [(p[:, : k + 1], lab[:, : k + 1]) for k in range(p.shape[1])]
    return [(p[:, k : k + 1], lab[:, k : k + 1]) for k in range(p.shape[1])]


def _shifted_seed(low_res: torch.Tensor, axis: int, direction: int, crop_size: int) -> torch.Tensor | None:
    """Low-res logits of a crop, moved into its neighbour half a crop away (zeros elsewhere)."""
    size = low_res.shape[-1]
    shift = crop_size // 2 * size / crop_size
    if shift != int(shift):
        return None
    shift, keep, dim = int(shift), size - int(shift), 2 + axis
    seed = torch.zeros_like(low_res)
    source, target = (shift, 0) if direction > 0 else (0, shift)
    seed.narrow(dim, target, keep).copy_(low_res.narrow(dim, source, keep))
    return seed


def _touched_faces(mask: torch.Tensor) -> list[tuple[int, int]]:
    """(axis, direction) of each crop face the mask reaches."""
    faces = []
    for axis in range(3):
        if mask.select(axis, 0).any():
            faces.append((axis, -1))
        if mask.select(axis, mask.shape[axis] - 1).any():
            faces.append((axis, +1))
    return faces


def _box_in_crop(box_mm_corners: np.ndarray, lattice: Lattice, start: np.ndarray, size: int) -> torch.Tensor:
    corners = lattice.index_of(box_mm_corners) - start
    box = np.stack([corners.min(axis=0), corners.max(axis=0)]).clip(0, size - 1)
    return torch.as_tensor(box, dtype=torch.float32)[None]


@dataclass(frozen=True)
class _Frame:
    """A target's crop lattice (input axes to closest RAS, the predictor's spacing, index 0 on the
    target's anchor) and how to plan its crops."""

    image: torch.Tensor
    anchor_mm: np.ndarray
    lattice: Lattice
    lattice_to_input: np.ndarray
    modality: Modality
    preprocessing: Preprocessing

    @classmethod
    def of(
        cls, image: torch.Tensor, volume: Volume, anchor_mm: np.ndarray, modality: Modality, prep: Preprocessing
    ) -> _Frame:
        lattice = Lattice.anchored(volume.affine, anchor_mm, prep.spacing_mm)
        return cls(image, anchor_mm, lattice, np.linalg.inv(volume.affine) @ lattice.affine, modality, prep)

    def start(self, offset: tuple[int, int, int]) -> np.ndarray:
        """The lattice index of the first voxel of the crop ``offset`` half crops from the first."""
        half = self.preprocessing.crop_size // 2
        return np.asarray(offset) * half - half

    def crop(self, offset: tuple[int, int, int]) -> PlannedCrop:
        """The crop at ``offset``: keyed by (anchor, start, modality), sampled trilinearly and normalised."""
        start, size = self.start(offset), self.preprocessing.crop_size
        key = (tuple(np.round(self.anchor_mm, 3)), tuple(int(s) for s in start), self.modality)

        def sample() -> tuple[torch.Tensor, torch.Tensor]:
            raw, inside = resample(self.image, self.lattice_to_input, (size,) * 3, start, "linear", return_inside=True)
            return normalize_crop(raw, self.modality, self.preprocessing), inside

        return PlannedCrop(key, sample)


def _first_crops(prepared: Prepared, resolved: list[ResolvedTarget], predictor: CropPredictor) -> list[PlannedCrop]:
    """The first crop of each target, in order (what a feed may encode ahead in one batch)."""
    return [
        _Frame.of(
            prepared.image, prepared.volume, r.anchor_mm, prepared.modality.modality, predictor.preprocessing
        ).crop((0, 0, 0))
        for r in resolved
    ]


def _predict_target(
    image: torch.Tensor,
    volume: Volume,
    resolved: ResolvedTarget,
    predictor: CropPredictor,
    modality: ModalityDecision,
    policy: ClickPolicy,
    max_crops: int,
    pass_box: bool,
    on_crop: Callable[[], Any],
    feed: CropFeed,
    upcoming: Sequence[PlannedCrop] = (),
) -> tuple[LatticeAccumulator, Lattice, list[dict[str, Any]], bool, dict[str, float]]:
    """Run the crops of one target; return the blend, its lattice, crop records, truncation, timings.

    ``feed`` hands out the crop embeddings; ``upcoming``: the crops asked of it after this
    target's (the next targets' first crops), which it may encode in a batch with this target's."""
    prep = predictor.preprocessing
    size = prep.crop_size
    frame = _Frame.of(image, volume, resolved.anchor_mm, modality.modality, prep)
    lattice, lattice_to_input = frame.lattice, frame.lattice_to_input
    volume_lo, volume_hi = input_extent(volume.shape, np.linalg.inv(lattice_to_input))
    points = lattice.index_of(np.array([c.mm for c in resolved.clicks]).reshape(-1, 3))
    labels = np.array([1 if c.positive else 0 for c in resolved.clicks])
    window = crop_window(size, image.device)
    blend = LatticeAccumulator()
    mask_so_far = 0
    timings = {"sample_s": 0.0, "encode_s": 0.0, "decode_s": 0.0}
    route: Route | None = None  # this target's routing, decided by its first decode
    # (offset in half crops, mask-prompt seed, parent crop index, parent's fill of its new voxels)
    queue: deque[tuple[tuple[int, int, int], torch.Tensor | None, int | None, float | None]] = deque(
        [((0, 0, 0), None, None, None)]
    )
    seen = {(0, 0, 0)}
    records: list[dict[str, Any]] = []
    while queue and len(records) < max_crops:
        offset, seed, parent, parent_fill = queue.popleft()
        start = frame.start(offset)
        # the queued crops this target will still run (max_crops allowing), then the next targets'
        queued = [frame.crop(entry[0]) for entry in list(queue)[: max_crops - len(records) - 1]]
        fed = feed.get(frame.crop(offset), [*queued, *upcoming])
        state, inside = fed.state, fed.inside
        t2 = time.perf_counter()
        coords, held = clicks_in_crop(points, start, size)
        box_mm = resolved.box_mm_corners if pass_box else None
        boxes = _box_in_crop(box_mm, lattice, start, size) if box_mm is not None and not records else None
        low_res, infos = seed, []
        for step_points, step_labels in _decode_steps(coords[held], labels[held], policy):
            prediction = predictor.decode(
                state, step_points, step_labels, mask_prompt=low_res, boxes=boxes, route=route
            )
            low_res = prediction.low_res_logits
            route = route or prediction.route  # the target keeps the route of its first decode
            infos.append(prediction.info)
        if low_res is None:
            raise SammoeError("no decode ran on the crop")
        logits = predictor.upsample(low_res)[0, 0].float().to(image.device)
        t3 = time.perf_counter()
        mask = (logits > 0) & inside
        covered = blend.covered(start, size)
        new = inside if covered is None else inside & ~covered
        new_voxels, new_mask = int(new.sum()), int((mask & new).sum())
        mask_so_far += new_mask
        blend.add(start, torch.sigmoid(logits), window)
        fill = new_mask / max(new_voxels, 1)
        stop = _extension_stop(new_mask, new_voxels, fill, mask_so_far, parent_fill)
        touched = _touched_faces(mask)
        for axis, direction in [] if stop else touched:
            beyond = (
                start[axis] + size - 0.5 < volume_hi[axis] if direction > 0 else start[axis] - 0.5 > volume_lo[axis]
            )
            neighbour = cast(
                tuple[int, int, int], tuple(int(o + direction * (a == axis)) for a, o in enumerate(offset))
            )
            if beyond and neighbour not in seen:
                seen.add(neighbour)
                queue.append((neighbour, _shifted_seed(low_res, axis, direction, size), len(records), fill))
        record: dict[str, Any] = {
            "offset_half_crops": list(offset),
            "centre_mm": [round(float(v), 3) for v in lattice.mm_of(start + size / 2 - 0.5)],
            "clicks": int(held.sum()),
            "box": boxes is not None,
            "mask_prompt": "official zero prompt" if seed is None else f"seeded from crop {parent}",
            "touches": [("+" if d > 0 else "-") + _FACES[a] for a, d in touched],
        }
        if stop:
            record["extension_stopped"] = stop
        if any(infos):
            record["predictor_info"] = infos
        records.append(record)
        timings["sample_s"] += fed.sample_s
        timings["encode_s"] += fed.encode_s
        timings["decode_s"] += t3 - t2
        on_crop()
    return blend, lattice, records, bool(queue), timings


def _paste_back(blend: LatticeAccumulator, lattice: Lattice, volume: Volume, linear: bool) -> _PastedTarget:
    """Sample the blended prediction onto the part of the input grid the crops covered.

    The first crop is centred on a prompt inside the volume, so that part is never empty.
    """
    probabilities, lower = blend.blended()
    to_blend = np.eye(4)
    to_blend[:3, 3] = -lower
    input_to_blend = to_blend @ np.linalg.inv(lattice.affine) @ volume.affine
    lo, hi = input_extent(tuple(probabilities.shape), np.linalg.inv(input_to_blend))
    first = np.maximum(0, np.ceil(lo)).astype(int)
    last = np.minimum(np.asarray(volume.shape), np.floor(hi).astype(int) + 1)
    shape = cast(tuple[int, int, int], tuple(int(n) for n in last - first))
    block = cast(tuple[slice, slice, slice], tuple(slice(int(a), int(b)) for a, b in zip(first, last)))
    nearest = resample(probabilities, input_to_blend, shape, first, "nearest").cpu().numpy()
    smooth = resample(probabilities, input_to_blend, shape, first, "linear").cpu().numpy() if linear else None
    return _PastedTarget(block, nearest, smooth)


def _claim(label: int, pasted: _PastedTarget, resolved: ResolvedTarget) -> TargetClaim:
    """What a target claims on the input grid: its probabilities and where its prompts are."""
    clicks = [
        cast(tuple[int, int, int], tuple(int(v) for v in np.rint(c.voxel)))
        for c in resolved.clicks
        if c.positive and not c.from_box
    ]
    box = None if resolved.box_voxel is None else (resolved.box_voxel[0], resolved.box_voxel[1])
    return TargetClaim(label, pasted.block, pasted.nearest, clicks, box)


def _box_record(resolved: ResolvedTarget) -> dict[str, Any] | None:
    if resolved.box_voxel is None or resolved.box_mm_corners is None:
        return None
    return {
        "voxel": [[round(float(v), 3) for v in corner] for corner in resolved.box_voxel],
        "mm_bounds": [
            [round(float(v), 3) for v in resolved.box_mm_corners.min(axis=0)],
            [round(float(v), 3) for v in resolved.box_mm_corners.max(axis=0)],
        ],
    }


@dataclass
class Prepared:
    """A volume ready for targets: its tensor (on the predictor's device), the CT/MR decision, the
    predictor's abilities."""

    volume: Volume
    image: torch.Tensor
    modality: ModalityDecision
    box_capable: bool
    box_as_click: bool
    read_s: float


@dataclass
class TargetOutput:
    """One target segmented: what it claims on the input grid, its record, its probabilities."""

    claim: TargetClaim
    result: TargetResult
    probabilities: np.ndarray | None  # linear-interpolated, on the claim's block


def prepare(
    image: Any, predictor: CropPredictor, *, affine: Any = None, modality: str = "auto", box_as_click: bool = False
) -> Prepared:
    """Read and check the volume and decide CT or MR (step 1 of :func:`segment`)."""
    t_start = time.perf_counter()
    volume = as_volume(image, affine)
    decision = decide_modality(volume.array, modality)
    return Prepared(
        volume,
        torch.from_numpy(volume.array).to(device_of(predictor)),
        decision,
        _box_capable(predictor),
        box_as_click,
        time.perf_counter() - t_start,
    )


def resolve(prepared: Prepared, target: Target, predictor: CropPredictor) -> ResolvedTarget:
    """A target's prompts checked against the volume (a box on a box-less network refused unless
    ``box_as_click``)."""
    volume = prepared.volume
    if target.box is not None and not prepared.box_capable and not prepared.box_as_click:
        config = getattr(getattr(predictor, "config", None), "name", "this network")
        raise PromptError(
            f"{volume.source}: target {target.name!r}: a box needs a network with box embeddings, and {config} has "
            "none; pass --box-as-click (box_as_click=True) to use the box centre as a click"
        )
    return resolve_target(target, volume.affine, volume.shape, volume.source, not prepared.box_capable)


def segment_target(
    prepared: Prepared,
    target: Target,
    predictor: CropPredictor,
    *,
    clicks: ClickPolicy = "newest",
    max_crops: int = DEFAULT_MAX_CROPS,
    probabilities: bool = False,
    on_crop: Callable[[], Any] = lambda: None,
    feed: CropFeed | None = None,
    upcoming: Sequence[PlannedCrop] = (),
) -> TargetOutput:
    """Segment one target on a prepared volume (step 2 of :func:`segment`).

    ``feed``: where the crop embeddings come from (default: a fresh :class:`~.crop_feed.CropFeed`;
    the interactive session passes one over its per-volume cache). ``upcoming``: the crops asked
    of ``feed`` after this target's, so that crops of several targets are encoded in one batch
    (:func:`segment` does this)."""
    feed = feed or CropFeed(predictor)
    res = resolve(prepared, target, predictor)
    volume = prepared.volume
    t0 = time.perf_counter()
    with torch.no_grad():
        blend, lattice, crops, truncated, timings = _predict_target(
            prepared.image,
            volume,
            res,
            predictor,
            prepared.modality,
            clicks,
            max_crops,
            prepared.box_capable,
            on_crop,
            feed,
            upcoming,
        )
    t1 = time.perf_counter()
    pasted = _paste_back(blend, lattice, volume, probabilities)
    timings["paste_s"] = time.perf_counter() - t1
    timings["total_s"] = time.perf_counter() - t0
    handling = None
    if res.box_voxel is not None:
        handling = (
            "box corners passed to the network's box embeddings in the first crop"
            if prepared.box_capable
            else "the network has no box embeddings: the box centre is the first positive "
            "click and the first crop is centred on the box"
        )
    result = TargetResult(target.name, target.label, res.clicks, _box_record(res), handling, crops, truncated, timings)
    return TargetOutput(_claim(target.label, pasted, res), result, pasted.linear)


def assemble(
    prepared: Prepared,
    outputs: list[TargetOutput],
    predictor: CropPredictor,
    *,
    clicks: ClickPolicy = "newest",
    max_crops: int = DEFAULT_MAX_CROPS,
    probabilities: bool = False,
    segment_s: float = 0.0,
) -> SegmentationResult:
    """The label map of all targets on the input grid, and the result record (step 3 of :func:`segment`)."""
    volume = prepared.volume
    label_dtype = np.uint8 if max((o.result.label for o in outputs), default=1) <= 255 else np.uint16
    label_map = resolve_targets(volume.shape, [o.claim for o in outputs], label_dtype)
    voxel_ml = float(np.prod(volume.spacing)) / 1000.0
    results = []
    for output in outputs:
        result = output.result
        result.voxel_count = int(np.count_nonzero(label_map == result.label))
        result.volume_ml = result.voxel_count * voxel_ml
        results.append(result)
    stacked = None
    if probabilities:
        maps = []
        for output in outputs:
            full = np.zeros(volume.shape, dtype=np.float32)
            full[output.claim.block] = output.probabilities
            maps.append(full)
        stacked = maps[0] if len(maps) == 1 else np.stack(maps, axis=-1)
    settings = {
        "clicks": clicks,
        "max_crops": max_crops,
        "extension_stops": {
            "min_gain": MIN_GAIN,
            "flood_fill": FLOOD_FILL,
            "flood_parent_fill": FLOOD_PARENT_FILL,
        },
        "preprocessing": predictor.preprocessing.model_dump(mode="json"),
        "lattice": "input axes reordered/flipped to closest RAS, isotropic spacing, centred on the prompt",
        "overlaps": "a target claims only mask pieces its own prompts reach; where claims overlap the most "
        "probable target wins; every positive click keeps its own target",
    }
    return SegmentationResult(
        volume=volume,
        label_map=label_map,
        probabilities=stacked,
        targets=results,
        modality=prepared.modality,
        model=predictor.describe(),
        settings=settings,
        timings={"read_s": prepared.read_s, "segment_s": segment_s},
    )


def segment(
    image: Any,
    prompts: Any,
    predictor: CropPredictor,
    *,
    affine: Any = None,
    modality: str = "auto",
    clicks: ClickPolicy = "newest",
    probabilities: bool = False,
    max_crops: int = DEFAULT_MAX_CROPS,
    progress: bool = False,
    box_as_click: bool = False,
) -> SegmentationResult:
    """Segment the prompted targets of one volume; the label map lies on the input grid.

    image: a path (NIfTI file or DICOM series folder), a nibabel image, a :class:`Volume`, or
    an array with ``affine`` (voxel indices -> RAS mm). prompts: a :class:`~.prompts.Target`,
    a list of them, or a prompts-file dict. modality: 'auto', 'ct' or 'mr'. clicks: 'newest'
    (default) passes each click alone with the previous logits as mask prompt, as every official
    model was trained (and as the maintainers advise); 'all' passes every click so far at each
    step (the current official inference script). probabilities: also return float probabilities
    on the input grid (one map per target, stacked on a last axis when there are several).
    max_crops: bound on the crops per target (edge extension). progress: a progress bar over the
    targets (shown only when stderr is a terminal). box_as_click: on a network without box
    embeddings, use a box's centre as its first positive click (otherwise such a box is an error).
    """
    if max_crops < 1:
        raise ValueError("max_crops must be at least 1")
    if clicks not in ("all", "newest"):
        raise ValueError(f"clicks must be 'all' or 'newest', not {clicks!r}")
    prepared = prepare(image, predictor, affine=affine, modality=modality, box_as_click=box_as_click)
    targets = make_targets(prompts)
    resolved = [resolve(prepared, target, predictor) for target in targets]  # all checked before any crop
    firsts = _first_crops(prepared, resolved, predictor)
    feed = CropFeed(predictor)
    t0 = time.perf_counter()
    bar = tqdm(
        desc="segment", unit="target", total=len(targets), disable=not progress or not sys.stderr.isatty(), leave=False
    )
    crops_done, current = 0, ""

    def crop_done() -> None:
        nonlocal crops_done
        crops_done += 1
        bar.set_postfix_str(f"{current}: {crops_done} crops so far")

    outputs = []
    with bar:
        for i, target in enumerate(targets):
            current = target.name
            bar.set_postfix_str(current)
            outputs.append(
                segment_target(
                    prepared,
                    target,
                    predictor,
                    clicks=clicks,
                    max_crops=max_crops,
                    probabilities=probabilities,
                    on_crop=crop_done,
                    feed=feed,
                    upcoming=firsts[i + 1 :],
                )
            )
            bar.update(1)
    return assemble(
        prepared,
        outputs,
        predictor,
        clicks=clicks,
        max_crops=max_crops,
        probabilities=probabilities,
        segment_s=time.perf_counter() - t0,
    )
