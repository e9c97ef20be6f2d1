"""One volume of a batch: the per-volume function every runner calls, and its batch wrapper.

:func:`segment_file` is the unit of work: one input path and prompts in, the output files
(written atomically) and a JSON-able record out, nothing else touched
(:func:`segment_file_deferred` is the same in two steps: segment, then write). :func:`run_item` is what
every batch engine (the local loop, Ray actors, Slurm shards) calls per item: it finds the
item's prompts, calls :func:`segment_file`, and turns a failure into a ``failed`` record so the
run goes on. There is no second code path for distributed runs.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec

from sammoe_core.distributed.inputs import PROMPTS_SUFFIX, BatchItem
from sammoe_core.io.outputs import planned_outputs, write_result
from sammoe_core.segmentation.prompts import PromptError, Target, load_prompts, make_targets

if TYPE_CHECKING:
    from sammoe_core.io.volumes import Volume
    from sammoe_core.segmentation.predictor import CropPredictor

P = ParamSpec("P")


def segment_file_deferred(
    input_path: str | Path,
    output_path: str | Path,
    predictor: CropPredictor,
    prompts: Any,
    *,
    modality: str = "auto",
    clicks: str = "newest",
    preview: str | Path | bool | None = None,
    probabilities: bool = False,
    statistics: bool = False,
    split: bool = False,
    overwrite: bool = False,
    max_crops: int | None = None,
    progress: bool = False,
    box_as_click: bool = False,
    volume: Volume | None = None,
    max_voxels: int | None = None,
) -> Callable[[], dict[str, Any]]:
    """Segment one volume file; return the function that writes its outputs and gives the record
    of the run (a batch runs it in a writer thread while the next volume is segmented;
    :func:`segment_file` runs it at once).

    ``statistics`` and ``split`` ask for per-structure statistics and one mask per target, and an
    ``output_path`` ending in ``.dcm`` for a DICOM SEG (see :func:`~sammoe_core.io.outputs.write_result`).

    ``volume``: the file, already read (the CLI reads it before loading the model); otherwise it
    is read here within the voxel budget ``max_voxels`` (default: :mod:`sammoe_core.io.limits`).
    ``progress`` counts crops on a bar when stderr is a terminal. The outputs are checked before
    any work (existing files without ``overwrite``, missing or unwritable folders), so a bad
    output location fails fast and leaves nothing behind.
    """
    from sammoe_core.io.volumes import read_volume
    from sammoe_core.segmentation.pipeline import DEFAULT_MAX_CROPS, segment

    started = time.perf_counter()
    targets = make_targets(prompts)
    planned_outputs(
        output_path,
        input_path,
        [t.name for t in targets],
        preview=preview,
        probabilities=probabilities,
        statistics=statistics,
        split=split,
        overwrite=overwrite,
    )
    result = segment(
        read_volume(input_path, max_voxels) if volume is None else volume,
        targets,
        predictor,
        modality=modality,
        clicks=clicks,  # type: ignore[arg-type]
        probabilities=probabilities,
        max_crops=max_crops or DEFAULT_MAX_CROPS,
        progress=progress,
        box_as_click=box_as_click,
    )

    def write() -> dict[str, Any]:
        paths = write_result(
            result,
            output_path,
            preview=preview,
            probabilities=probabilities,
            statistics=statistics,
            split=split,
            overwrite=overwrite,
        )
        return {
            "input": str(input_path),
            "status": "done",
            "outputs": paths.to_dict(),
            "modality": result.modality.modality,
            "targets": [
                {
                    "name": t.name,
                    "label": t.label,
                    "voxel_count": t.voxel_count,
                    "volume_ml": round(t.volume_ml, 3),
                    "crops": len(t.crops),
                }
                for t in result.targets
            ],
            "seconds": round(time.perf_counter() - started, 3),
        }

    return write


def _written_now(deferred: Callable[P, Callable[[], dict[str, Any]]]) -> Callable[P, dict[str, Any]]:
    """``deferred`` with its write run at once."""

    @functools.wraps(deferred)
    def now(*args: P.args, **kwargs: P.kwargs) -> dict[str, Any]:
        return deferred(*args, **kwargs)()

    return now


segment_file = _written_now(segment_file_deferred)
segment_file.__name__ = segment_file.__qualname__ = "segment_file"
segment_file.__doc__ = """Segment one volume file to its outputs and return the record of the run: the
arguments and checks of :func:`segment_file_deferred`, its outputs written at once."""


@dataclass(frozen=True)
class SegmentSettings:
    """How every volume of a batch is segmented (picklable: it travels to Ray actors).

    ``prompts`` are used for every volume when given; otherwise each item's own prompts file.
    """

    prompts: tuple[Target, ...] | None = None
    modality: str = "auto"
    clicks: str = "newest"
    preview: bool = False
    probabilities: bool = False
    overwrite: bool = False
    max_crops: int | None = None
    box_as_click: bool = False
    max_voxels: int | None = None
    statistics: bool = False
    split: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The settings for a run report (shared prompts by target name)."""
        out = asdict(self)
        out["prompts"] = None if self.prompts is None else [t.name for t in self.prompts]
        return out

    def digest(self, description: dict[str, Any]) -> str:
        """sha256 of everything besides the weights that shapes an output: these settings (the
        shared prompts in full) and the predictor's policy; a rerun redoes outputs it changes."""
        import hashlib
        import json

        out = {k: v for k, v in asdict(self).items() if k not in ("overwrite", "prompts")}
        for added in ("statistics", "split"):  # off, they leave the digest of earlier runs as it was
            if not out[added]:
                del out[added]
        out["prompts"] = None if self.prompts is None else [t.model_dump(mode="json") for t in self.prompts]
        out["policy"] = [description.get("policy"), description.get("policy_settings")]
        return hashlib.sha256(json.dumps(out, sort_keys=True, default=str).encode()).hexdigest()


def item_prompts_digest(item: BatchItem, settings: SegmentSettings) -> str | None:
    """sha256 of the prompts file an item uses (None when the batch shares its prompts, which the
    settings digest covers, or when the item has none)."""
    from sammoe_core.files.hashing import sha256_file

    if settings.prompts is not None or item.prompts is None or not item.prompts.is_file():
        return None
    return sha256_file(item.prompts)


def weights_hashes(description: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Every ``*sha256`` entry of a predictor's ``describe()``, flattened (``experts.x.weights_sha256``).

    These identify the weights an output was made with: the foundation, each expert, the gate.
    """
    found: dict[str, str] = {}
    for key, value in description.items():
        if isinstance(value, dict):
            found.update(weights_hashes(value, f"{prefix}{key}."))
        elif key.endswith("sha256") and isinstance(value, str):
            found[f"{prefix}{key}"] = value
    return dict(sorted(found.items()))


def describe_predictor(predictor: Any) -> dict[str, Any]:
    """``predictor.describe()``, or nothing for a predictor that cannot describe itself."""
    describe = getattr(predictor, "describe", None)
    return describe() if callable(describe) else {}


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the ones made, outermost first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    missing.reverse()
    for path in missing:
        path.mkdir(exist_ok=True)
    return missing


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if isinstance(error, (ValueError, OSError)) else f"{type(error).__name__}: {text}"


def run_item(
    item: BatchItem,
    predictor: CropPredictor,
    settings: SegmentSettings,
    volume: Callable[[], Volume] | None = None,
) -> dict[str, Any]:
    """Segment one batch item with :func:`segment_file`; a failure becomes a ``failed`` record.

    Any exception but an interrupt is caught, so one bad volume (unreadable, no prompts, out of
    memory) never stops the volumes after it; the record says what went wrong. The record holds
    the item's key, the status, and the hashes of the weights used (:func:`weights_hashes`).
    ``volume``: gives the item's volume when it was read ahead (its read errors are the item's).
    An item with ``resume`` may replace the outputs the run that left it pending wrote.
    :func:`start_item` does the same in two steps.
    """
    return start_item(item, predictor, settings, volume)()


def start_item(
    item: BatchItem,
    predictor: CropPredictor,
    settings: SegmentSettings,
    volume: Callable[[], Volume] | None = None,
) -> Callable[[], dict[str, Any]]:
    """:func:`run_item`'s segmentation now; returns the function that writes the outputs and gives
    the record (a failure in either step gives a ``failed`` record and leaves no empty folders)."""
    started = time.perf_counter()
    base = {"key": item.key, "input": str(item.input)}
    made: list[Path] = []
    description = describe_predictor(predictor)
    identity = {**weights_hashes(description), "settings_sha256": settings.digest(description)}
    prompts = item_prompts_digest(item, settings)
    if prompts is not None:
        identity["prompts_sha256"] = prompts

    def failed(error: Exception) -> dict[str, Any]:
        for folder in reversed(made):  # a failed item leaves no empty folders
            try:
                folder.rmdir()
            except OSError:
                break
        seconds = round(time.perf_counter() - started, 3)
        return {**base, "status": "failed", "error": _one_line(error), "seconds": seconds, "weights": identity}

    try:
        if settings.prompts is not None:
            targets: Any = list(settings.prompts)
        elif item.prompts is not None:
            targets = load_prompts(item.prompts)
        else:
            raise PromptError(
                f"{item.input}: no prompts (give points, put {item.name}{PROMPTS_SUFFIX} beside it, "
                "or name a file in the manifest's 'prompts')"
            )
        made = _make_folders(item.output.parent)
        write = segment_file_deferred(
            item.input,
            item.output,
            predictor,
            targets,
            modality=settings.modality,
            clicks=settings.clicks,
            preview=settings.preview,
            probabilities=settings.probabilities,
            statistics=settings.statistics,
            split=settings.split,
            overwrite=settings.overwrite or item.resume,
            max_crops=settings.max_crops,
            box_as_click=settings.box_as_click,
            max_voxels=settings.max_voxels,
            volume=None if volume is None else volume(),
        )
    except Exception as e:  # noqa: BLE001 - recorded; the batch goes on
        record = failed(e)
        return lambda: record

    def finish() -> dict[str, Any]:
        try:
            return {**base, **write(), "weights": identity}
        except Exception as e:  # noqa: BLE001 - recorded; the batch goes on
            return failed(e)

    return finish
