"""Writing a segmentation: label map, sidecar JSON, optional probabilities and preview PNG.

All files of one result are written to temporary names first and renamed only when every one
of them is complete, so a failure leaves nothing behind. Names derive from the label map's:
``OUT.nii.gz`` -> ``OUT.json`` (sidecar), ``OUT.probabilities.nii.gz``, and the preview where
the caller puts it (``OUT.png`` when asked for without a path).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sammoe_core.errors import InputError
from sammoe_core.files.atomic import OutputExistsError, atomic_output

if TYPE_CHECKING:
    from sammoe_core.segmentation.pipeline import SegmentationResult

LABEL_SUFFIXES = (".nii.gz", ".nii")


class OutputError(InputError):
    """An output that cannot be written where it was asked for."""


@dataclass(frozen=True)
class OutputPaths:
    """Every file one segmentation writes (None: not requested)."""

    label_map: Path
    sidecar: Path
    probabilities: Path | None = None
    preview: Path | None = None

    def all(self) -> list[Path]:
        return [p for p in (self.label_map, self.sidecar, self.probabilities, self.preview) if p is not None]

    def to_dict(self) -> dict[str, str]:
        names = ("label_map", "sidecar", "probabilities", "preview")
        return {n: str(p) for n, p in zip(names, (self.label_map, self.sidecar, self.probabilities, self.preview)) if p}


def _stem(path: Path) -> str:
    name = path.name
    for suffix in LABEL_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    raise OutputError(f"{path}: the label map must be a .nii.gz or .nii file")


def output_paths(
    out_path: str | Path, preview: str | Path | bool | None = None, probabilities: bool = False
) -> OutputPaths:
    """The files a result will be written to; ``preview=True`` puts it at ``OUT.png``."""
    out_path = Path(out_path)
    stem = _stem(out_path)
    if not stem or stem.startswith("."):
        raise OutputError(f"{out_path}: the output needs a name before its suffix (e.g. liver.nii.gz)")
    suffix = out_path.name[len(stem) :]
    preview_path = None
    if preview is True:
        preview_path = out_path.with_name(f"{stem}.png")
    elif preview:
        preview_path = Path(preview)
        if preview_path.suffix.lower() != ".png":
            raise OutputError(f"{preview_path}: the preview must be a .png file")
    return OutputPaths(
        label_map=out_path,
        sidecar=out_path.with_name(f"{stem}.json"),
        probabilities=out_path.with_name(f"{stem}.probabilities{suffix}") if probabilities else None,
        preview=preview_path,
    )


def check_outputs(paths: OutputPaths, overwrite: bool = False, inputs: tuple[str | Path, ...] = ()) -> None:
    """Fail before any work if a folder is missing or unwritable, a file exists (no overwrite), or
    an output would replace one of ``inputs`` (or a file inside an input folder), with or
    without ``overwrite``."""
    try:
        sources = [Path(i).resolve() for i in inputs]
        targets = {path: path.resolve() for path in paths.all()}
    except (RuntimeError, OSError) as e:  # a symlink loop
        raise OutputError(f"an input or output path cannot be resolved ({e})") from None
    for path in paths.all():
        target = targets[path]
        for source in sources:
            if target == source or target.is_relative_to(source):
                raise OutputError(f"{path}: the output would replace the input {source}; choose another output path")
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            raise OutputError(f"{path}: output folder {folder} does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(f"{path}: output folder {folder} is not writable")
        if path.is_dir():
            raise OutputError(f"{path}: is a folder, not a file")
        if path.exists() and not overwrite:
            raise OutputError(f"{path}: output exists (pass --overwrite to replace it)")


def write_result(
    result: SegmentationResult,
    out_path: str | Path,
    *,
    preview: str | Path | bool | None = None,
    probabilities: bool = False,
    overwrite: bool = False,
    extra: dict[str, Any] | None = None,
) -> OutputPaths:
    """Write the label map (on the input grid), sidecar JSON, and the requested extra files.

    ``probabilities`` needs a result made with ``segment(..., probabilities=True)``. ``extra``
    adds keys to the sidecar (for example a run's own facts).
    """
    from sammoe_core.io.volumes.nifti import nifti_like

    paths = output_paths(out_path, preview, probabilities)
    if probabilities and result.probabilities is None:
        raise OutputError(f"{paths.probabilities}: the result holds no probabilities (segment with probabilities=True)")
    check_outputs(paths, overwrite)
    sidecar = result.to_dict()
    sidecar["files"] = {k: Path(v).name for k, v in paths.to_dict().items()}
    if probabilities:
        sidecar["probabilities_volumes"] = [t.label for t in result.targets]
    sidecar.update(extra or {})
    try:
        with contextlib.ExitStack() as stack:
            temporary = {p: stack.enter_context(atomic_output(p, overwrite=overwrite)) for p in paths.all()}
            nifti_like(result.label_map, result.volume).to_filename(str(temporary[paths.label_map]))
            if paths.probabilities is not None and result.probabilities is not None:  # both or neither (above)
                nifti_like(result.probabilities, result.volume).to_filename(str(temporary[paths.probabilities]))
            if paths.preview is not None:
                from sammoe_core.io.preview import render_preview

                render_preview(result, temporary[paths.preview])
            temporary[paths.sidecar].write_text(json.dumps(sidecar, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    except OutputExistsError:
        raise
    except PermissionError as e:
        raise OutputError(f"{e.filename or paths.label_map}: cannot write here (permission denied)") from None
    except OSError as e:
        raise OutputError(f"{e.filename or paths.label_map}: cannot write ({e.strerror or e})") from None
    return paths
