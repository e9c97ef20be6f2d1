"""The expert manifest: ``expert.json`` beside the expert's ``model.safetensors``.

It says what the expert segments, what it was finetuned from (the foundation's config and the
sha256 of its weights file: an expert is only valid on that exact foundation), which tensors its
weights override, the preprocessing it expects, and the oldest sammoe that can run it. The
folder layout (``expert.json`` + ``model.safetensors``) is also the Hub repo layout.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sammoe_core.errors import SammoeError
from sammoe_core.files.atomic import write_text_atomic
from sammoe_core.segmentation.preprocessing import Preprocessing

MANIFEST_FILE = "expert.json"
WEIGHTS_FILE = "model.safetensors"
SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
SHA256 = r"^[0-9a-f]{64}$"
TENSOR_NAME = r"^[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*\.?$"


TEXT_LIMIT = 2000  # characters of free text (description)
NAME_LIMIT = 200  # characters of a short text field (an author, a target name)


def _plain_text(value: str, limit: int, what: str) -> str:
    """Printable text of at most ``limit`` characters (newlines and tabs allowed in long text)."""
    if len(value) > limit:
        raise ValueError(f"{what} is {len(value)} characters long (at most {limit})")
    allowed = "\n\t" if limit > NAME_LIMIT else ""
    bad = sorted({repr(c) for c in value if not c.isprintable() and c not in allowed})
    if bad:
        raise ValueError(f"{what} holds control characters {', '.join(bad)}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TargetClass(_Strict):
    """A structure the expert segments; ``labels``: its values in label maps, where known."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$", max_length=64)
    labels: tuple[int, ...] | None = None

    @field_validator("labels")
    @classmethod
    def _positive(cls, v: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if v is not None and (not v or min(v) < 1):
            raise ValueError("label values must be a non-empty list of integers >= 1")
        return v


class FoundationRef(_Strict):
    """The foundation the expert was finetuned from."""

    config: str = Field(min_length=1, description="network config name, e.g. 'sammoe-small'")
    sha256: str = Field(pattern=SHA256, description="sha256 of the foundation's weights file")
    hub_id: str | None = None


class WeightsRef(_Strict):
    file: str = Field(WEIGHTS_FILE, pattern=r"^[A-Za-z0-9_.-]+\.safetensors$")
    sha256: str = Field(pattern=SHA256)


class CalibrationSet(_Strict):
    """Labelled cases for gate training: a dataset folder (dataset.json, images/, labels/)."""

    path: str = Field(min_length=1, description="folder relative to the manifest")
    classes: tuple[str, ...] = Field(min_length=1, description="dataset classes this expert is expert on")

    @field_validator("path")
    @classmethod
    def _inside(cls, v: str) -> str:
        p = Path(v)
        if p.is_absolute() or ".." in p.parts:
            raise ValueError("must be a folder inside the expert folder (relative, no '..')")
        return v


class EvaluationRow(_Strict):
    """One measured figure (for model cards): e.g. Dice of a target on a dataset."""

    dataset: str
    target: str
    metric: str
    value: float
    cases: int | None = Field(None, ge=1)


class ExpertManifest(_Strict):
    manifest_version: Literal[1] = 1
    name: str = Field(pattern=SLUG, max_length=64, description="lowercase slug, unique among experts")
    version: str
    description: str = Field(min_length=1)
    targets: tuple[TargetClass, ...] = Field(min_length=1)
    modality: Literal["ct", "mr", "any"]
    license: str = Field(description="SPDX license expression")
    authors: tuple[str, ...] = Field(min_length=1)
    foundation: FoundationRef
    weights: WeightsRef
    overrides: tuple[str, ...] = Field(
        min_length=1, description="tensor names, or prefixes ending in '.', the weights replace"
    )
    preprocessing: Preprocessing = Preprocessing()
    min_sammoe_version: str
    calibration: CalibrationSet | None = None
    evaluation: tuple[EvaluationRow, ...] = ()

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v == "foundation":
            raise ValueError("'foundation' is reserved (it names the foundation among the gate's candidates)")
        return v

    @field_validator("description")
    @classmethod
    def _description(cls, v: str) -> str:
        return _plain_text(v, TEXT_LIMIT, "description")

    @field_validator("authors")
    @classmethod
    def _authors(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for author in v:
            if not author.strip():
                raise ValueError("an author is empty")
            _plain_text(author, NAME_LIMIT, "an author")
        return v

    @field_validator("version", "min_sammoe_version")
    @classmethod
    def _pep440(cls, v: str) -> str:
        from packaging.version import InvalidVersion, Version

        try:
            return str(Version(v))
        except InvalidVersion:
            raise ValueError(f"{v!r} is not a version (PEP 440)") from None

    @field_validator("license")
    @classmethod
    def _spdx(cls, v: str) -> str:
        from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

        try:
            return str(canonicalize_license_expression(v))
        except InvalidLicenseExpression as e:
            raise ValueError(f"not an SPDX license expression ({e})") from None

    @field_validator("overrides")
    @classmethod
    def _tensor_names(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [o for o in v if not re.match(TENSOR_NAME, o)]
        if bad:
            raise ValueError(f"not tensor names or prefixes: {', '.join(bad)}")
        return v

    @model_validator(mode="after")
    def _calibration_classes(self) -> ExpertManifest:
        if self.calibration is not None:
            names = {t.name for t in self.targets}
            unknown = sorted(set(self.calibration.classes) - names)
            if unknown:
                raise ValueError(f"calibration classes {unknown} are not among the targets {sorted(names)}")
        return self

    def overrides_tensor(self, key: str) -> bool:
        """Whether ``key`` is one of the tensors this expert declares it overrides."""
        return any(key == o or (o.endswith(".") and key.startswith(o)) for o in self.overrides)

    def sammoe_version_problem(self) -> str | None:
        """Why the running sammoe cannot use this expert (too old), or None."""
        from packaging.version import Version

        from sammoe_core import __version__

        if Version(__version__) < Version(self.min_sammoe_version):
            return (
                f"expert {self.name!r} needs sammoe >= {self.min_sammoe_version} but this is "
                f"sammoe {__version__}; upgrade sammoe"
            )
        return None


def validate_manifest(data: object, source: str) -> ExpertManifest:
    """An :class:`ExpertManifest` from parsed JSON, or a :class:`SammoeError` naming every problem."""
    try:
        return ExpertManifest.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'manifest'}: {err['msg']}" for err in e.errors())
        raise SammoeError(f"{source}: invalid expert manifest: {problems}") from None


def read_manifest(path: str | Path) -> ExpertManifest:
    """Read and validate an ``expert.json`` (a folder holding one is accepted too)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SammoeError(f"{path}: no expert manifest here") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise SammoeError(
            f"{path}: not a JSON manifest ({type(e).__name__}: {' '.join(str(e).split())[:120]})"
        ) from None
    return validate_manifest(data, str(path))


def write_manifest(manifest: ExpertManifest, path: str | Path, overwrite: bool = False) -> None:
    write_text_atomic(path, manifest.model_dump_json(indent=2, exclude_none=True) + "\n", overwrite=overwrite)
