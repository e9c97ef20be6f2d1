"""What a batch segments: items from a folder of volumes or a manifest file, and static shards.

A :class:`BatchItem` is one input path, its prompts file (if any) and its label-map path. Items
come from a folder (NIfTI files and DICOM series subfolders, by name, each with an optional
``<case>.prompts.json`` beside it) or from a manifest: CSV with a header, or JSON Lines, with
the fields ``image`` (required), ``prompts`` and ``output`` (optional; ending in ``.dcm``: a
DICOM SEG of a DICOM series image). Relative ``image`` and ``prompts`` paths are taken from the
manifest's folder, relative ``output`` paths from the output folder. The order is deterministic
(sorted names for a folder, file order for a manifest). A :class:`Shard` ``I/N`` keeps the items
whose key hashes to ``I`` modulo ``N``: shards ``0..N-1`` partition the items exactly, and an
item keeps its shard when others are added, so Slurm array tasks can be rerun with a grown
input list.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sammoe_core.errors import SammoeError
from sammoe_core.files.safe_paths import resolve_inside
from sammoe_core.io.outputs import LABEL_SUFFIXES, label_stem
from sammoe_core.io.volumes.dicom import looks_like_dicom
from sammoe_core.io.volumes.nifti import NIFTI_SUFFIXES, is_nifti_path

PROMPTS_SUFFIX = ".prompts.json"
MANIFEST_SUFFIXES = (".csv", ".jsonl")
MANIFEST_FIELDS = ("image", "prompts", "output")


@dataclass(frozen=True)
class BatchItem:
    """One volume of a batch. ``key`` names it in run manifests and shards (its output path
    relative to the output folder), ``name`` is the output stem. ``resume``: an item an earlier
    run started and never recorded (it died); the outputs it left are that run's own, and this
    run may replace them."""

    key: str
    name: str
    input: Path
    prompts: Path | None
    output: Path
    resume: bool = False

    def to_dict(self) -> dict[str, str | bool | None]:
        return {
            "key": self.key,
            "name": self.name,
            "input": str(self.input),
            "prompts": None if self.prompts is None else str(self.prompts),
            "output": str(self.output),
            "resume": self.resume,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchItem:
        prompts = data.get("prompts")
        return cls(
            data["key"],
            data["name"],
            Path(data["input"]),
            Path(prompts) if prompts else None,
            Path(data["output"]),
            bool(data.get("resume", False)),
        )


def case_name(path: str | Path) -> str:
    """The output stem of an input: its file name less the NIfTI suffix (a folder: its name)."""
    name = Path(path).name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _holds_dicom(folder: Path) -> bool:
    return any(looks_like_dicom(p) for p in folder.iterdir() if p.is_file())


def is_manifest(path: str | Path) -> bool:
    """A CSV or JSON Lines file listing the volumes of a batch."""
    path = Path(path)
    return path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES


def is_batch_input(path: str | Path) -> bool:
    """A folder of volumes (rather than one DICOM series folder), or a manifest file."""
    path = Path(path)
    return (path.is_dir() and not _holds_dicom(path)) or is_manifest(path)


def _item(output_dir: Path, image: Path, prompts: Path | None, output: Path | None) -> BatchItem:
    name = case_name(image) if output is None else label_stem(output)
    output = output_dir / f"{name}.nii.gz" if output is None else output
    try:
        key = output.relative_to(output_dir).as_posix()
    except ValueError:
        key = output.as_posix()
    return BatchItem(key, name, image, prompts, output)


def folder_items(input_dir: str | Path, output_dir: str | Path) -> list[BatchItem]:
    """NIfTI files directly in ``input_dir`` and its subfolders that hold a DICOM series, by name."""
    folder, output_dir = Path(input_dir), Path(output_dir)
    if not folder.is_dir():
        raise SammoeError(f"{folder}: not a folder")
    inputs = [p for p in folder.iterdir() if (p.is_file() and is_nifti_path(p)) or (p.is_dir() and _holds_dicom(p))]
    items = []
    for path in sorted(inputs):
        prompts = folder / f"{case_name(path)}{PROMPTS_SUFFIX}"
        items.append(_item(output_dir, path, prompts if prompts.is_file() else None, None))
    if not items:
        raise SammoeError(f"{folder}: no volumes ({' or '.join(NIFTI_SUFFIXES)} files, or DICOM series folders)")
    return items


def _manifest_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SammoeError(f"{path}: a manifest must be UTF-8 text") from None
    if path.suffix.lower() == ".csv":
        try:
            return _csv_rows(path, text)
        except csv.Error as e:
            raise SammoeError(f"{path}: unreadable CSV ({e})") from None
    return _jsonl_rows(path, text)


def _csv_rows(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(text.splitlines())
    fields = [f.strip() for f in reader.fieldnames or []]
    if "image" not in fields:
        raise SammoeError(
            f"{path}: a CSV manifest needs a header line with an 'image' column (and optional 'prompts', 'output')"
        )
    unknown = sorted(set(fields) - set(MANIFEST_FIELDS))
    if unknown:
        raise SammoeError(f"{path}: unknown columns {unknown}; known: {', '.join(MANIFEST_FIELDS)}")
    return [(n + 2, {k.strip(): (v or "").strip() for k, v in row.items() if k}) for n, row in enumerate(reader)]


def _jsonl_rows(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise SammoeError(f"{path}:{n}: not JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise SammoeError(
                f"{path}:{n}: each line must be a JSON object with 'image' (and optional 'prompts', 'output')"
            )
        unknown = sorted(set(row) - set(MANIFEST_FIELDS))
        if unknown:
            raise SammoeError(f"{path}:{n}: unknown fields {unknown}; known: {', '.join(MANIFEST_FIELDS)}")
        rows.append((n, row))
    return rows


def manifest_items(manifest: str | Path, output_dir: str | Path) -> list[BatchItem]:
    """The items a CSV or JSON Lines manifest lists, in file order."""
    manifest, output_dir = Path(manifest), Path(output_dir)
    base = manifest.parent
    items = []
    for line, row in _manifest_rows(manifest):
        image = row.get("image")
        if not image or not isinstance(image, str):
            raise SammoeError(f"{manifest}:{line}: no 'image' path")
        prompts, output = row.get("prompts") or None, row.get("output") or None
        for field, value in (("prompts", prompts), ("output", output)):
            if value is not None and not isinstance(value, str):
                raise SammoeError(f"{manifest}:{line}: '{field}' must be a path")
        if output is not None and not str(output).lower().endswith(LABEL_SUFFIXES):
            raise SammoeError(
                f"{manifest}:{line}: output {output!r} must end in .nii.gz or .nii (or .dcm: a DICOM SEG of a DICOM "
                "series image)"
            )
        if output is not None:
            # resolved against the output folder and kept inside it (a row cannot write elsewhere)
            inside = resolve_inside(output_dir, output, f"{manifest}:{line}: output")
            output = (output_dir / inside.relative_to(output_dir.resolve())).as_posix()
        items.append(
            _item(
                output_dir,
                base / image,
                None if prompts is None else base / prompts,
                None if output is None else output_dir / output,
            )
        )
    if not items:
        raise SammoeError(f"{manifest}: lists no volumes")
    seen: dict[str, Path] = {}
    for item in items:
        if item.key in seen:
            raise SammoeError(
                f"{manifest}: {seen[item.key]} and {item.input} would both write {item.output}; give an 'output' column"
            )
        seen[item.key] = item.input
    return items


def list_items(source: str | Path, output_dir: str | Path) -> list[BatchItem]:
    """The items of a folder of volumes or of a manifest file."""
    return manifest_items(source, output_dir) if is_manifest(source) else folder_items(source, output_dir)


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based): the items whose key hashes to ``index`` mod ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise SammoeError(f"shard {self.index}/{self.count}: need 0 <= I < N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"`` (as in ``--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``)."""
        parts = text.replace(" ", "").split("/")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise SammoeError(f"--shard {text}: expected I/N with 0 <= I < N, e.g. 0/4")
        return cls(int(parts[0]), int(parts[1]))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, key: str) -> bool:
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    def select(self, items: list[BatchItem]) -> list[BatchItem]:
        return [item for item in items if self.holds(item.key)]
