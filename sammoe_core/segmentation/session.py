"""An interactive segmentation session: one volume, one predictor, named targets edited by clicks.

This is what a viewer (or a notebook) drives. A :class:`Session` holds the prepared volume, the
predictor, the targets with their clicks and boxes, an undo/redo history per target, and a cache
of crop embeddings: the first click on a crop runs the image encoder, every further click on the
same target reuses it and runs only the prompt encoder, the gate and the chosen decoder. Each edit
re-segments only the target it touches (edge extension included, exactly as
:func:`~sammoe_core.segmentation.pipeline.segment` does); :meth:`Session.result` assembles every
target into one label map on the input grid, the same one ``sammoe segment`` writes for the same
prompts (:meth:`Session.prompts` gives those prompts as a prompts-file dict).

    >>> session = Session("ct.nii.gz", predictor)
    >>> session.add_target("liver")
    >>> session.add_click("liver", (210, 180, 60))          # voxel indices
    >>> session.add_click("liver", (260, 180, 60), positive=False)
    >>> session.undo("liver")
    >>> result = session.result()                            # a SegmentationResult

With the mixture of experts, :meth:`Session.route` tells which candidate the gate chose for a
target and the probabilities of all of them, and :meth:`Session.set_policy` changes the policy
(or forces an expert) and re-segments every target from the cached embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sammoe_core.errors import InputError
from sammoe_core.io.limits import MAX_CLICKS_PER_TARGET, MAX_TARGETS
from sammoe_core.io.volumes import Volume
from sammoe_core.segmentation.crop_feed import CropFeed
from sammoe_core.segmentation.pipeline import (
    DEFAULT_MAX_CROPS,
    ClickPolicy,
    SegmentationResult,
    TargetOutput,
    assemble,
    prepare,
    segment_target,
)
from sammoe_core.segmentation.predictor import CropPredictor
from sammoe_core.segmentation.prompts import Target

Space = Literal["voxel", "mm"]
CACHED_CROPS = 64  # crop embeddings kept (the oldest go first)


class _Embeddings(dict[Any, Any]):
    """Crop embeddings by key, at most ``CACHED_CROPS`` of them (first in, first out)."""

    def __setitem__(self, key: Any, value: Any) -> None:
        if key not in self and len(self) >= CACHED_CROPS:
            del self[next(iter(self))]
        super().__setitem__(key, value)


_Prompts = tuple[list[dict[str, Any]], dict[str, Any] | None]  # a target's clicks and box, as edited


@dataclass
class _TargetState:
    """A target's prompts now, its history, and its last segmentation."""

    name: str
    label: int
    clicks: list[dict[str, Any]] = field(default_factory=list)
    box: dict[str, Any] | None = None
    undo: list[_Prompts] = field(default_factory=list)
    redo: list[_Prompts] = field(default_factory=list)
    output: TargetOutput | None = None

    def target(self) -> Target | None:
        """The prompts as a :class:`Target`, or None while it has no positive click and no box."""
        if self.box is None and not any(c["positive"] for c in self.clicks):
            return None
        return Target.model_validate({"name": self.name, "label": self.label, "clicks": self.clicks, "box": self.box})


class Session:
    """One volume segmented interactively (see the module docstring)."""

    def __init__(
        self,
        image: Any,
        predictor: CropPredictor,
        *,
        affine: Any = None,
        modality: str = "auto",
        clicks: ClickPolicy = "newest",
        max_crops: int = DEFAULT_MAX_CROPS,
        box_as_click: bool = False,
    ) -> None:
        self.predictor = predictor
        self.prepared = prepare(image, predictor, affine=affine, modality=modality, box_as_click=box_as_click)
        self.click_policy = clicks
        self.max_crops = max_crops
        self._targets: dict[str, _TargetState] = {}
        self._encodings = _Embeddings()
        self.encoder_passes = 0  # crops encoded so far (the cache spares the rest)
        self.revision = 0  # counts the changes of targets, prompts or policy (a viewer redraws on a new one)

    @property
    def volume(self) -> Volume:
        return self.prepared.volume

    @property
    def targets(self) -> list[str]:
        return list(self._targets)

    # --- targets ---------------------------------------------------------------------------

    def add_target(self, name: str, label: int | None = None) -> int:
        """A new, empty target; returns its label value (the next free one unless given)."""
        if name in self._targets:
            raise InputError(f"a target named {name!r} exists already")
        if len(self._targets) >= MAX_TARGETS:
            raise InputError(f"a session holds at most {MAX_TARGETS} targets")
        used = {t.label for t in self._targets.values()}
        if label is None:
            label = next(v for v in range(1, 65536) if v not in used)
        elif label in used:
            raise InputError(f"label {label} is taken by another target")
        Target.model_validate({"name": name, "label": label, "box": [0, 0, 0, 1, 1, 1]})  # name and label checks
        self._targets[name] = _TargetState(name, label)
        self.revision += 1
        return label

    def rename_target(self, name: str, new_name: str) -> None:
        state = self._get(name)
        if new_name in self._targets:
            raise InputError(f"a target named {new_name!r} exists already")
        Target.model_validate({"name": new_name, "box": [0, 0, 0, 1, 1, 1]})
        self._targets = {(new_name if k == name else k): v for k, v in self._targets.items()}
        state.name = new_name
        if state.output is not None:
            state.output.result.name = new_name
        self.revision += 1

    def remove_target(self, name: str) -> None:
        del self._targets[self._get(name).name]
        self.revision += 1

    # --- prompts ---------------------------------------------------------------------------

    def add_click(self, name: str, position: Sequence[float], positive: bool = True, space: Space = "voxel") -> None:
        """Add a click to a target and re-segment it (its crops' embeddings are reused)."""
        state = self._get(name)
        if len(state.clicks) >= MAX_CLICKS_PER_TARGET:
            raise InputError(f"target {name!r} holds {MAX_CLICKS_PER_TARGET} clicks already")
        click = {"position": [float(v) for v in position], "positive": bool(positive), "space": space}
        self._edit(state, [*state.clicks, click], state.box)

    def set_box(self, name: str, lower: Sequence[float], upper: Sequence[float], space: Space = "voxel") -> None:
        """Give a target a box (replacing any) and re-segment it."""
        state = self._get(name)
        box = {"lower": [float(v) for v in lower], "upper": [float(v) for v in upper], "space": space}
        self._edit(state, state.clicks, box)

    def clear(self, name: str) -> None:
        """Remove every prompt of a target (undoable)."""
        state = self._get(name)
        self._edit(state, [], None)

    def undo(self, name: str) -> bool:
        """Undo the target's last edit; False when there is nothing to undo."""
        state = self._get(name)
        return self._step(state, state.undo, state.redo)

    def redo(self, name: str) -> bool:
        """Redo the target's last undone edit; False when there is nothing to redo."""
        state = self._get(name)
        return self._step(state, state.redo, state.undo)

    def _step(self, state: _TargetState, source: list[_Prompts], other: list[_Prompts]) -> bool:
        """Apply the newest prompts of ``source``, keeping the current ones on ``other``."""
        if not source:
            return False
        other.append((state.clicks, state.box))
        clicks, box = source.pop()
        self._apply(state, clicks, box)
        return True

    # --- the mixture of experts -------------------------------------------------------------

    def route(self, name: str) -> dict[str, Any] | None:
        """How the target is routed: ``policy``, ``chosen`` (candidate -> blend weight) and, when a
        gate decided, ``gate`` (candidate -> probability); None for a single network or a target
        without prompts. The gate decides on the target's first decode (its first click, in its
        first crop); later clicks and the crops edge extension adds keep that route."""
        output = self._get(name).output
        crops = output.result.crops if output is not None else []
        infos = crops[0].get("predictor_info") if crops else None
        return dict(infos[-1]) if infos and "chosen" in infos[-1] else None

    def set_policy(self, policy: str, options: dict[str, Any] | None = None, expert: str | None = None) -> None:
        """Give the mixture of experts another policy (``expert``: force that expert) and
        re-segment every target; the cached crop embeddings are reused, so no encoder runs. A
        refused policy, or a failure while re-segmenting, changes nothing."""
        from sammoe_core.moe.segmenter import MoESegmenter, build_policy

        if not isinstance(self.predictor, MoESegmenter):
            raise InputError("a single network has no gate or policy; run the mixture of experts (no weights file)")
        previous = self.predictor.policy
        self.predictor.policy = build_policy(policy, options, expert, self.predictor.experts)
        try:
            outputs = {s.name: self._segment(s) for s in self._targets.values() if s.target() is not None}
        except BaseException:
            self.predictor.policy = previous
            raise
        for name, output in outputs.items():
            self._targets[name].output = output
        self.revision += 1

    # --- results ---------------------------------------------------------------------------

    def target_state(self, name: str) -> dict[str, Any]:
        """A target's label, prompts as edited (clicks, box) and how many undo and redo steps it has."""
        state = self._get(name)
        return {
            "name": state.name,
            "label": state.label,
            "clicks": [dict(c) for c in state.clicks],
            "box": None if state.box is None else dict(state.box),
            "undo_steps": len(state.undo),
            "redo_steps": len(state.redo),
        }

    def target_output(self, name: str) -> TargetOutput | None:
        """The target's last segmentation (None while it has no prompt)."""
        return self._get(name).output

    def prompts(self) -> dict[str, Any]:
        """The current prompts as a prompts-file dict (``sammoe segment --prompts`` reproduces
        :meth:`result` from it)."""
        targets = [t.target() for t in self._targets.values()]
        return {"targets": [t.model_dump(mode="json", exclude_none=True) for t in targets if t is not None]}

    def result(self, probabilities: bool = False) -> SegmentationResult:
        """Every segmented target assembled into one label map on the input grid."""
        outputs = [t.output for t in self._targets.values() if t.output is not None]
        if not outputs:
            raise InputError("no target has a prompt yet")
        if probabilities and any(o.probabilities is None for o in outputs):
            for state in self._targets.values():
                if state.output is not None:
                    state.output = self._segment(state, probabilities=True)
            outputs = [t.output for t in self._targets.values() if t.output is not None]
        return assemble(
            self.prepared,
            outputs,
            self.predictor,
            clicks=self.click_policy,
            max_crops=self.max_crops,
            probabilities=probabilities,
        )

    # --- internals -------------------------------------------------------------------------

    def _get(self, name: str) -> _TargetState:
        if name not in self._targets:
            raise InputError(f"no target named {name!r}; targets: {', '.join(self._targets) or 'none'}")
        return self._targets[name]

    def _edit(self, state: _TargetState, clicks: list[dict[str, Any]], box: dict[str, Any] | None) -> None:
        previous = (state.clicks, state.box)
        self._apply(state, clicks, box)  # checks the prompts first: a refused edit changes nothing
        state.undo.append(previous)
        state.redo.clear()

    def _apply(self, state: _TargetState, clicks: list[dict[str, Any]], box: dict[str, Any] | None) -> None:
        old = (state.clicks, state.box, state.output)
        state.clicks, state.box = clicks, box
        try:
            state.output = self._segment(state) if state.target() is not None else None
        except BaseException:
            state.clicks, state.box, state.output = old
            raise
        self.revision += 1

    def _segment(self, state: _TargetState, probabilities: bool = False) -> TargetOutput:
        target = state.target()
        if target is None:
            raise InputError(f"target {state.name!r} has no positive click and no box")
        keys = set(self._encodings)
        output = segment_target(
            self.prepared,
            target,
            self.predictor,
            clicks=self.click_policy,
            max_crops=self.max_crops,
            probabilities=probabilities,
            feed=CropFeed(self.predictor, self._encodings),
        )
        self.encoder_passes += len(set(self._encodings) - keys)
        return output
