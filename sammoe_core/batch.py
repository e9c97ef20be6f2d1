"""Files in, files out: the per-volume function and the folder loop that calls it.

:func:`segment_file` is the unit of work every runner calls (the CLI, the folder loop, and later
distributed engines): one input path and prompts in, the output files and a JSON-able record
out, nothing else touched. :func:`segment_folder` runs it over a folder: existing outputs are
skipped unless ``overwrite``, a failing case is recorded and the rest go on, a progress bar shows
on a terminal, and one JSON run report is written beside the outputs.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import __version__
from .atomic import OutputExistsError, write_text_atomic
from .errors import SammoeError
from .outputs import OutputError, check_outputs, output_paths, write_result
from .predictor import CropPredictor
from .prompts import PromptError, Target, load_prompts
from .volumes.dicom import looks_like_dicom
from .volumes.nifti import NIFTI_SUFFIXES, is_nifti_path

PROMPTS_SUFFIX = ".prompts.json"
_CASE_ERRORS = (SammoeError, OutputExistsError, OSError)


def segment_file(
    input_path: str | Path,
    output_path: str | Path,
    predictor: CropPredictor,
    prompts: Any,
    *,
    modality: str = "auto",
    clicks: str = "newest",
    preview: str | Path | bool | None = None,
    probabilities: bool = False,
    overwrite: bool = False,
    max_crops: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Segment one volume file to its outputs; return the record of the run.

    ``progress`` counts crops on a bar when stderr is a terminal. The outputs are checked before any work (existing files without ``overwrite``, missing or
    unwritable folders), so a bad output location fails fast and leaves nothing behind.
    """
    from .segment import DEFAULT_MAX_CROPS, segment

    started = time.perf_counter()
    check_outputs(output_paths(output_path, preview, probabilities), overwrite)
    result = segment(
        input_path,
        prompts,
        predictor,
        modality=modality,
        clicks=clicks,  # type: ignore[arg-type]
        probabilities=probabilities,
        max_crops=max_crops or DEFAULT_MAX_CROPS,
        progress=progress,
    )
    paths = write_result(result, output_path, preview=preview, probabilities=probabilities, overwrite=overwrite)
    return {
        "input": str(input_path),
        "status": "done",
        "outputs": paths.to_dict(),
        "modality": result.modality.modality,
        "targets": [
            {"name": t.name, "label": t.label, "voxel_count": t.voxel_count, "volume_ml": round(t.volume_ml, 3), "crops": len(t.crops)}
            for t in result.targets
        ],
        "seconds": round(time.perf_counter() - started, 3),
    }


@dataclass(frozen=True)
class Case:
    """One volume of a batch: its name (output stem), input path and per-case prompts file."""

    name: str
    input: Path
    prompts: Path | None


def _case_name(path: Path) -> str:
    name = path.name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _holds_dicom(folder: Path) -> bool:
    return any(looks_like_dicom(p) for p in folder.iterdir() if p.is_file())


def find_cases(folder: str | Path) -> list[Case]:
    """NIfTI files directly in ``folder`` and its subfolders that hold a DICOM series, by name."""
    folder = Path(folder)
    inputs = [p for p in folder.iterdir() if (p.is_file() and is_nifti_path(p)) or (p.is_dir() and _holds_dicom(p))]
    cases = []
    for path in sorted(inputs):
        name = _case_name(path)
        prompts = folder / f"{name}{PROMPTS_SUFFIX}"
        cases.append(Case(name, path, prompts if prompts.is_file() else None))
    return cases


def is_batch_input(path: str | Path) -> bool:
    """A folder of volumes (rather than one DICOM series folder)."""
    path = Path(path)
    return path.is_dir() and not _holds_dicom(path)


def _progress(items: list[Case], quiet: bool) -> Any:
    from tqdm import tqdm

    return tqdm(items, desc="segment", unit="volume", disable=quiet or not sys.stderr.isatty())


def segment_folder(
    input_dir: str | Path,
    output_dir: str | Path,
    predictor: CropPredictor,
    prompts: list[Target] | None = None,
    *,
    modality: str = "auto",
    clicks: str = "newest",
    preview: bool = False,
    probabilities: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    max_crops: int | None = None,
) -> dict[str, Any]:
    """Segment every case of ``input_dir`` into ``output_dir`` (``<case>.nii.gz`` and friends).

    Each case uses ``prompts`` when given, else its own ``<case>.prompts.json`` beside it.
    Returns the run report, also written as ``sammoe-run-<UTC time>.json`` in ``output_dir``.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():
        raise SammoeError(f"{input_dir}: not a folder")
    cases = find_cases(input_dir)
    if not cases:
        raise SammoeError(f"{input_dir}: no volumes ({' or '.join(NIFTI_SUFFIXES)} files, or DICOM series folders)")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{output_dir}: cannot make the output folder ({e.strerror or e})") from None
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    records = []
    for case in _progress(cases, quiet):
        label_map = output_dir / f"{case.name}.nii.gz"
        if label_map.exists() and not overwrite:
            records.append({"case": case.name, "input": str(case.input), "status": "skipped", "reason": "output exists"})
            continue
        try:
            if prompts is not None:
                targets: Any = prompts
            elif case.prompts is not None:
                targets = load_prompts(case.prompts)
            else:
                raise PromptError(f"{case.input}: no prompts (give points, or put {case.name}{PROMPTS_SUFFIX} beside it)")
            record = segment_file(
                case.input,
                label_map,
                predictor,
                targets,
                modality=modality,
                clicks=clicks,
                preview=preview,
                probabilities=probabilities,
                overwrite=overwrite,
                max_crops=max_crops,
            )
        except _CASE_ERRORS as e:
            record = {"input": str(case.input), "status": "error", "error": " ".join(str(e).split())}
        records.append({"case": case.name, **record})
    describe = getattr(predictor, "describe", None)
    counts = {s: sum(r["status"] == s for r in records) for s in ("done", "skipped", "error")}
    report = {
        "sammoe_version": __version__,
        "started_utc": started.isoformat(timespec="seconds"),
        "input": str(input_dir),
        "output": str(output_dir),
        **({"model": describe()} if callable(describe) else {}),
        "settings": {"modality": modality, "clicks": clicks, "probabilities": probabilities, "preview": preview},
        "counts": counts,
        "seconds": round(time.perf_counter() - clock, 3),
        "cases": records,
    }
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    report_path, n = output_dir / f"sammoe-run-{stamp}.json", 1
    while report_path.exists():
        n += 1
        report_path = output_dir / f"sammoe-run-{stamp}-{n}.json"
    write_text_atomic(report_path, json.dumps(report, indent=2) + "\n")
    report["report_path"] = str(report_path)
    return report
