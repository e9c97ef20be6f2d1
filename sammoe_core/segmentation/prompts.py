"""Prompts: clicks and boxes in input-voxel or world coordinates, prompt files, simulated clicks.

* :class:`Prompt` is one click: a position, positive or negative, in the input file's voxel
  indices (``space="voxel"``, 0-based, array axis order) or in world RAS millimetres
  (``space="mm"``). :class:`Box` is two opposite corners in either space.
* :class:`Target` is one structure to segment: a name, the label value it gets in the output,
  its clicks (in order) and an optional box. A prompts file holds several targets
  (:func:`load_prompts`; the format is in docs/coordinates.md).
* :func:`resolve_target` checks a target against a volume and gives its clicks in voxel and mm
  coordinates; :func:`clicks_in_crop` turns lattice positions into crop-voxel coordinates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sammoe_core.errors import InputError
from sammoe_core.io.limits import MAX_CLICKS_PER_TARGET, MAX_PROMPTS_FILE_BYTES, MAX_TARGETS, regular_file

# Finite numbers only: NaN or infinity in a prompt is an error (it would pass every bounds check).
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Coordinate = tuple[FiniteFloat, FiniteFloat, FiniteFloat]
Space = Literal["voxel", "mm"]
_SHORTHAND = {
    "points": (True, "voxel"),
    "points_mm": (True, "mm"),
    "negative_points": (False, "voxel"),
    "negative_points_mm": (False, "mm"),
}


class PromptError(InputError):
    """A prompt that does not fit the volume, or a prompts file that cannot be used."""


class Prompt(BaseModel):
    """One click: ``position`` in input voxel indices or world RAS mm; positive or negative."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    position: Coordinate
    positive: bool = True
    space: Space = "voxel"


class Box(BaseModel):
    """An axis-aligned box (in the chosen space) given by two opposite corners."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lower: Coordinate
    upper: Coordinate
    space: Space = "voxel"

    @model_validator(mode="after")
    def _ordered(self) -> Box:
        lower = tuple(min(a, b) for a, b in zip(self.lower, self.upper))
        upper = tuple(max(a, b) for a, b in zip(self.lower, self.upper))
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        return self

    @classmethod
    def from_corners(cls, values: Any, space: Space = "voxel") -> Box:
        """``[x0, y0, z0, x1, y1, z1]`` -> Box."""
        values = list(values)
        if len(values) != 6:
            raise ValueError(f"a box needs 6 numbers x0,y0,z0,x1,y1,z1, got {len(values)}")
        return cls(lower=tuple(values[:3]), upper=tuple(values[3:]), space=space)


class Target(BaseModel):
    """One structure: name, output label value, clicks in order, optional box.

    Besides ``clicks`` (a list of :class:`Prompt`), the shorthand keys of prompt files are
    accepted: ``points``, ``negative_points``, ``points_mm``, ``negative_points_mm`` (lists of
    [x, y, z]) and ``box`` / ``box_mm`` ([x0, y0, z0, x1, y1, z1]). Shorthand clicks follow the
    explicit ones, positives first.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field("target", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+ -]*$")
    label: int = Field(1, ge=1, le=65535)
    clicks: tuple[Prompt, ...] = Field((), max_length=MAX_CLICKS_PER_TARGET)
    box: Box | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        clicks = list(data.pop("clicks", []) or [])
        for key, (positive, space) in _SHORTHAND.items():
            for position in data.pop(key, []) or []:
                clicks.append({"position": position, "positive": positive, "space": space})
        data["clicks"] = clicks
        box_keys: tuple[tuple[str, Space], ...] = (("box", "voxel"), ("box_mm", "mm"))
        for key, box_space in box_keys:
            value = data.pop(key, None)
            if value is None:
                continue
            if "box" in data:
                raise ValueError("give one box per target (box or box_mm)")
            data["box"] = Box.from_corners(value, box_space) if isinstance(value, (list, tuple)) else value
        return data

    @model_validator(mode="after")
    def _has_anchor(self) -> Target:
        if self.box is None and not any(c.positive for c in self.clicks):
            raise ValueError(f"target {self.name!r} needs a positive click or a box")
        return self


class PromptsFile(BaseModel):
    """The ``--prompts FILE.json`` format: ``{"targets": [ {...}, ... ]}``, label values unique."""

    model_config = ConfigDict(extra="forbid")

    targets: list[Target] = Field(min_length=1, max_length=MAX_TARGETS)

    @field_validator("targets")
    @classmethod
    def _unique_labels(cls, targets: list[Target]) -> list[Target]:
        labels = [t.label for t in targets]
        repeated = sorted({v for v in labels if labels.count(v) > 1})
        if repeated:
            raise ValueError(f"label values must be unique; repeated: {repeated}")
        return targets


def _pydantic_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


def load_prompts(path: str | Path) -> list[Target]:
    """Read and check a prompts file."""
    path = Path(path)
    try:
        size = regular_file(path, "prompts file").st_size
        if size > MAX_PROMPTS_FILE_BYTES:
            raise PromptError(f"{path}: prompts file of {size} bytes (at most {MAX_PROMPTS_FILE_BYTES})")
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PromptError(f"{path}: no such prompts file") from None
    except RecursionError:
        raise PromptError(f"{path}: JSON nested too deeply") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PromptError(f"{path}: not a readable JSON prompts file ({e})") from None
    try:
        return PromptsFile.model_validate(data).targets
    except ValidationError as e:
        raise PromptError(f"{path}: {_pydantic_problem(e)}") from None


def make_targets(targets: Any) -> list[Target]:
    """A Target, a list of them, or a dict/list in the prompts-file form -> checked targets."""
    if isinstance(targets, Target):
        targets = [targets]
    elif isinstance(targets, dict):
        targets = targets.get("targets", [targets])
    try:
        return PromptsFile.model_validate({"targets": list(targets)}).targets
    except ValidationError as e:
        raise PromptError(f"<prompts>: {_pydantic_problem(e)}") from None


@dataclass(frozen=True)
class ResolvedClick:
    """A click checked against a volume, in both coordinate systems."""

    voxel: np.ndarray
    mm: np.ndarray
    positive: bool
    from_box: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "voxel": [round(float(v), 3) for v in self.voxel],
            "mm": [round(float(v), 3) for v in self.mm],
            "positive": self.positive,
            **({"from_box": True} if self.from_box else {}),
        }


@dataclass(frozen=True)
class ResolvedTarget:
    """A target's clicks and box in voxel and mm coordinates, and the point its crop centres on."""

    target: Target
    clicks: list[ResolvedClick]
    box_voxel: np.ndarray | None
    box_mm_corners: np.ndarray | None
    anchor_mm: np.ndarray


def _to_voxel_and_mm(position: Coordinate, space: Space, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sammoe_core.io.volumes import apply_affine

    p = np.asarray(position, dtype=np.float64)
    if space == "voxel":
        return p, apply_affine(affine, p)
    return apply_affine(np.linalg.inv(affine), p), p


def _check_inside(voxel: np.ndarray, shape: tuple[int, ...], what: str, source: str) -> None:
    if np.any(voxel < -0.5) or np.any(voxel > np.asarray(shape) - 0.5):
        shown = ", ".join(f"{v:g}" for v in np.round(voxel, 2))
        raise PromptError(
            f"{source}: {what} at voxel ({shown}) is outside the volume (shape {'x'.join(map(str, shape))})"
        )


def resolve_target(
    target: Target, affine: np.ndarray, shape: tuple[int, ...], source: str, box_as_click: bool = True
) -> ResolvedTarget:
    """Check every click and box corner lies in the volume; express them in voxels and mm.

    The crop centres on the box centre when there is a box, else on the first positive click.
    ``box_as_click`` (for networks without box embeddings) makes the box centre the first click.
    """
    from sammoe_core.io.volumes import apply_affine

    clicks = []
    for prompt in target.clicks:
        voxel, mm = _to_voxel_and_mm(prompt.position, prompt.space, affine)
        kind = "positive" if prompt.positive else "negative"
        _check_inside(voxel, shape, f"target {target.name!r}: {kind} point", source)
        clicks.append(ResolvedClick(voxel, mm, prompt.positive))
    box_voxel = box_mm = None
    if target.box is not None:
        lower, _ = _to_voxel_and_mm(target.box.lower, target.box.space, affine)
        upper, _ = _to_voxel_and_mm(target.box.upper, target.box.space, affine)
        for corner in (lower, upper):
            _check_inside(corner, shape, f"target {target.name!r}: box corner", source)
        box_voxel = np.stack([np.minimum(lower, upper), np.maximum(lower, upper)])
        corners = np.array(np.meshgrid(*box_voxel.T, indexing="ij")).reshape(3, -1).T
        box_mm = apply_affine(affine, corners)
        centre = box_voxel.mean(axis=0)
        anchor = apply_affine(affine, centre)
        if box_as_click:
            clicks.insert(0, ResolvedClick(centre, anchor, True, from_box=True))
    else:
        anchor = next(c.mm for c in clicks if c.positive)
    return ResolvedTarget(target, clicks, box_voxel, box_mm, anchor)


def clicks_in_crop(
    lattice_points: np.ndarray, start: np.ndarray, size: int, margin: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Crop-voxel coordinates of lattice points and which of them the crop holds.

    A point is held if it lies within the crop's extent widened by ``margin`` voxels, so that the
    prompt at the centre of one crop stays visible at the edge of its half-overlapping neighbours
    in both directions.
    """
    coords = np.asarray(lattice_points, dtype=np.float64).reshape(-1, 3) - np.asarray(start)
    held = np.all((coords >= -0.5 - margin) & (coords <= size - 0.5 + margin), axis=1)
    return coords, held
