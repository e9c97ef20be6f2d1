"""Writing a segmentation: label map, sidecar JSON and the extra files asked for.

All files of one result are written to temporary names first and renamed only when every one
of them is complete, so a failure leaves nothing behind. Names derive from the label map's:
``OUT.nii.gz`` (or ``OUT.dcm``, a DICOM SEG of a DICOM series input) -> ``OUT.json`` (sidecar),
``OUT.probabilities.nii.gz``, ``OUT.statistics.json`` (per-structure statistics, also in the
sidecar), ``OUT/<target>.nii.gz`` (one mask per target), and the preview where the caller puts
it (``OUT.png`` when asked for without a path).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sammoe_core.errors import InputError
from sammoe_core.files.atomic import OutputExistsError, atomic_output
from sammoe_core.io.structure_files import structure_paths

if TYPE_CHECKING:
    from sammoe_core.segmentation.pipeline import SegmentationResult

DICOM_SUFFIX = ".dcm"
LABEL_SUFFIXES = (".nii.gz", ".nii", DICOM_SUFFIX)


class OutputError(InputError):
    """An output that cannot be written where it was asked for."""


@dataclass(frozen=True)
class OutputPaths:
    """Every file one segmentation writes (None: not requested). ``structures`` maps each target
    name to its mask file (``--split``), all in ``structures_folder``."""

    label_map: Path
    sidecar: Path
    probabilities: Path | None = None
    preview: Path | None = None
    statistics: Path | None = None
    structures: dict[str, Path] = field(default_factory=dict)
    structures_folder: Path | None = None

    def files(self) -> list[Path]:
        """The files beside the label map (the label map first), per-target masks aside."""
        singles = (self.label_map, self.sidecar, self.probabilities, self.preview, self.statistics)
        return [p for p in singles if p is not None]

    def all(self) -> list[Path]:
        return self.files() + list(self.structures.values())

    def to_dict(self) -> dict[str, str]:
        names = ("label_map", "sidecar", "probabilities", "preview", "statistics", "structures")
        values = (self.label_map, self.sidecar, self.probabilities, self.preview, self.statistics)
        return {n: str(p) for n, p in zip(names, (*values, self.structures_folder)) if p}

    @property
    def is_dicom_seg(self) -> bool:
        return self.label_map.name.lower().endswith(DICOM_SUFFIX)


def label_stem(path: str | Path) -> str:
    """A label map's name less its suffix (``.nii.gz``, ``.nii`` or ``.dcm``)."""
    path = Path(path)
    name = path.name
    for suffix in LABEL_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    raise OutputError(f"{path}: the label map must be a .nii.gz or .nii file (or .dcm for a DICOM SEG)")


def output_paths(
    out_path: str | Path,
    preview: str | Path | bool | None = None,
    probabilities: bool = False,
    *,
    statistics: bool = False,
    split: list[str] | None = None,
) -> OutputPaths:
    """The files a result will be written to; ``preview=True`` puts it at ``OUT.png``; ``split``:
    the target names that each get ``OUT/<name>.nii.gz``."""
    out_path = Path(out_path)
    stem = label_stem(out_path)
    if not stem or stem.startswith("."):
        raise OutputError(f"{out_path}: the output needs a name before its suffix (e.g. liver.nii.gz)")
    suffix = out_path.name[len(stem) :]
    if suffix.lower() == DICOM_SUFFIX:
        suffix = LABEL_SUFFIXES[0]  # probabilities stay NIfTI
    preview_path = None
    if preview is True:
        preview_path = out_path.with_name(f"{stem}.png")
    elif preview:
        preview_path = Path(preview)
        if preview_path.suffix.lower() != ".png":
            raise OutputError(f"{preview_path}: the preview must be a .png file")
    folder = out_path.with_name(stem) if split is not None else None
    return OutputPaths(
        label_map=out_path,
        sidecar=out_path.with_name(f"{stem}.json"),
        probabilities=out_path.with_name(f"{stem}.probabilities{suffix}") if probabilities else None,
        preview=preview_path,
        statistics=out_path.with_name(f"{stem}.statistics.json") if statistics else None,
        structures={} if folder is None else structure_paths(folder, split or []),
        structures_folder=folder,
    )


def check_outputs(paths: OutputPaths, overwrite: bool = False, inputs: tuple[str | Path, ...] = ()) -> None:
    """Fail before any work if a folder is missing or unwritable, a file exists (no overwrite), or
    an output would replace one of ``inputs`` (or a file inside an input folder), with or
    without ``overwrite``. The per-target folder may be missing (it is made beside the label map)."""
    try:
        sources = [Path(i).resolve() for i in inputs]
        targets = {path: path.resolve() for path in paths.all()}
    except (RuntimeError, OSError) as e:  # a symlink loop
        raise OutputError(f"an input or output path cannot be resolved ({e})") from None
    made_later = paths.structures_folder
    if made_later is not None and made_later.exists() and not made_later.is_dir():
        raise OutputError(f"{made_later}: is a file; the per-target masks need a folder of that name")
    for path in paths.all():
        target = targets[path]
        for source in sources:
            if target == source or target.is_relative_to(source):
                raise OutputError(f"{path}: the output would replace the input {source}; choose another output path")
        folder = path.parent if str(path.parent) else Path(".")
        if folder == made_later and not folder.exists():
            continue
        if not folder.is_dir():
            raise OutputError(f"{path}: output folder {folder} does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(f"{path}: output folder {folder} is not writable")
        if path.is_dir():
            raise OutputError(f"{path}: is a folder, not a file")
        if path.exists() and not overwrite:
            raise OutputError(f"{path}: output exists (pass --overwrite to replace it)")


def check_label_format(paths: OutputPaths, input_path: str | Path) -> None:
    """A DICOM SEG output needs a DICOM series input: a one-line error otherwise."""
    if paths.is_dicom_seg:
        from sammoe_core.io.dicom_seg import dicom_seg_source

        dicom_seg_source(input_path, paths.label_map)


def _check_statistics_names(paths: OutputPaths, names: list[str]) -> None:
    """Statistics are listed by target name: names must not repeat."""
    repeated = sorted({n for n in names if names.count(n) > 1})
    if paths.statistics is not None and repeated:
        raise OutputError(f"{paths.statistics}: statistics are listed by target name, and {repeated} repeat")


def planned_outputs(
    out_path: str | Path,
    input_path: str | Path,
    target_names: list[str],
    *,
    preview: str | Path | bool | None = None,
    probabilities: bool = False,
    statistics: bool = False,
    split: bool = False,
    overwrite: bool = False,
) -> OutputPaths:
    """The files segmenting ``input_path`` will write, checked before any work (see
    :func:`check_outputs` and :func:`check_label_format`)."""
    paths = output_paths(out_path, preview, probabilities, statistics=statistics, split=target_names if split else None)
    _check_statistics_names(paths, target_names)
    check_label_format(paths, input_path)
    check_outputs(paths, overwrite, inputs=(input_path,))
    return paths


def _make_folder(folder: Path | None) -> Path | None:
    """Create the per-target folder if missing; return it when made here (removed on failure)."""
    if folder is None or folder.exists():
        return None
    folder.mkdir()
    return folder


def _sidecar(
    result: SegmentationResult, paths: OutputPaths, segments: list[tuple[str, int]], extra: dict[str, Any] | None
) -> dict[str, Any]:
    """The sidecar's content: the result's record, the files, and the statistics when asked for."""
    sidecar = result.to_dict()
    sidecar["files"] = {k: Path(v).name for k, v in paths.to_dict().items()}
    if paths.structures:
        sidecar["files"]["structures"] = {n: f"{p.parent.name}/{p.name}" for n, p in paths.structures.items()}
    if paths.probabilities is not None:
        sidecar["probabilities_volumes"] = [label for _, label in segments]
    if paths.statistics is not None:
        from sammoe_core.io.statistics import label_map_statistics

        sidecar["statistics"] = label_map_statistics(result.label_map, result.volume, segments)
    sidecar.update(extra or {})
    return sidecar


def write_result(
    result: SegmentationResult,
    out_path: str | Path,
    *,
    preview: str | Path | bool | None = None,
    probabilities: bool = False,
    statistics: bool = False,
    split: bool = False,
    overwrite: bool = False,
    extra: dict[str, Any] | None = None,
) -> OutputPaths:
    """Write the label map (on the input grid), sidecar JSON, and the requested extra files.

    ``probabilities`` needs a result made with ``segment(..., probabilities=True)``.
    ``statistics`` adds per-structure statistics to the sidecar and writes them to
    ``OUT.statistics.json`` (see :mod:`sammoe_core.io.statistics`); ``split`` writes one 0/1 mask
    per target to ``OUT/<name>.nii.gz``. An ``OUT.dcm`` label map is a DICOM SEG referencing the
    input series (a DICOM series folder). ``extra`` adds keys to the sidecar (for example a
    run's own facts).
    """
    from sammoe_core.io.volumes.nifti import nifti_like

    names = [t.name for t in result.targets]
    paths = output_paths(out_path, preview, probabilities, statistics=statistics, split=names if split else None)
    if probabilities and result.probabilities is None:
        raise OutputError(f"{paths.probabilities}: the result holds no probabilities (segment with probabilities=True)")
    _check_statistics_names(paths, names)
    check_label_format(paths, result.volume.source)
    check_outputs(paths, overwrite)
    segments = [(t.name, t.label) for t in result.targets]
    sidecar = _sidecar(result, paths, segments, extra)
    made = None
    try:
        made = _make_folder(paths.structures_folder)
        with contextlib.ExitStack() as stack:
            temporary = {p: stack.enter_context(atomic_output(p, overwrite=overwrite)) for p in paths.all()}
            if paths.is_dicom_seg:
                from sammoe_core.io.dicom_seg import write_dicom_seg

                source = Path(result.volume.source)
                sidecar["dicom_seg"] = write_dicom_seg(
                    result.label_map, result.volume, segments, source, temporary[paths.label_map]
                )
            else:
                nifti_like(result.label_map, result.volume).to_filename(str(temporary[paths.label_map]))
            if paths.probabilities is not None and result.probabilities is not None:  # both or neither (above)
                nifti_like(result.probabilities, result.volume).to_filename(str(temporary[paths.probabilities]))
            labels = dict(segments)
            for name, path in paths.structures.items():
                mask = (result.label_map == labels[name]).astype(np.uint8)
                nifti_like(mask, result.volume).to_filename(str(temporary[path]))
            if paths.preview is not None:
                from sammoe_core.io.preview import render_preview

                render_preview(result, temporary[paths.preview])
            if paths.statistics is not None:
                text = json.dumps(sidecar["statistics"], indent=2, allow_nan=False) + "\n"
                temporary[paths.statistics].write_text(text, encoding="utf-8")
            temporary[paths.sidecar].write_text(json.dumps(sidecar, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    except BaseException as error:
        if made is not None:
            with contextlib.suppress(OSError):
                made.rmdir()
        if isinstance(error, PermissionError):
            raise OutputError(f"{error.filename or paths.label_map}: cannot write here (permission denied)") from None
        if isinstance(error, OSError) and not isinstance(error, OutputExistsError):
            raise OutputError(
                f"{error.filename or paths.label_map}: cannot write ({error.strerror or error})"
            ) from None
        raise
    return paths
