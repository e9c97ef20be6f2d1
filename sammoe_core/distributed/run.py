"""A batch run: select a shard, consult the run manifest, run an engine, write the report.

:func:`run_batch` is the one driver every batch goes through, whatever the engine: it keeps the
items of the shard, skips those already done (the output exists; the manifest says whether with
the same weights), marks the rest pending, records each item in the manifest as the engine hands
its result back, shows a progress bar on a terminal, and writes one JSON run report beside the
outputs (counts of done, failed and skipped volumes, volumes per minute, every item's record),
and returns it as a :class:`BatchReport`.
:func:`segment_folder` and :func:`segment_batch` are its front doors for a folder and for a
folder-or-manifest.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sammoe_core import __version__
from sammoe_core.distributed.engines import Engine, LocalEngine
from sammoe_core.distributed.inputs import BatchItem, Shard, folder_items, list_items
from sammoe_core.distributed.item import SegmentSettings, item_prompts_digest, weights_hashes
from sammoe_core.distributed.run_manifest import RunManifest
from sammoe_core.errors import InputError
from sammoe_core.files.atomic import write_text_atomic
from sammoe_core.io.outputs import OutputError

if TYPE_CHECKING:
    from sammoe_core.segmentation.predictor import CropPredictor
    from sammoe_core.segmentation.prompts import Target

COUNTED = ("done", "failed", "skipped")


@dataclass(frozen=True)
class BatchReport:
    """What a batch run did: the JSON report as written to ``report_path``, with its commonly
    read parts as typed properties."""

    data: dict[str, Any]
    report_path: Path

    @property
    def counts(self) -> dict[str, int]:
        """Cases per status: done, failed, skipped."""
        return cast(dict[str, int], self.data["counts"])

    @property
    def cases(self) -> list[dict[str, Any]]:
        """One record per case of the shard, in input order."""
        return cast(list[dict[str, Any]], self.data["cases"])

    @property
    def seconds(self) -> float:
        return float(self.data["seconds"])

    @property
    def volumes_per_minute(self) -> float:
        return float(self.data["volumes_per_minute"])

    @property
    def shard(self) -> str | None:
        return cast("str | None", self.data["shard"])


UNCHANGED = "done in an earlier run with the same weights, settings and prompts"


def _skip_reason(
    item: BatchItem, prior: dict[str, Any] | None, identity: dict[str, str], overwrite: bool
) -> str | None:
    """Why ``item`` needs no work this run, or None. Only an existing output is ever skipped;
    a reason other than :data:`UNCHANGED` says what changed and names ``--overwrite``. An item an
    earlier run left ``pending`` is redone: that run began it without an output (or with
    ``--overwrite``) and held the manifest's lock, so what is there now is its own unrecorded work."""
    if overwrite or not item.output.exists() or (prior is not None and prior["status"] == "pending"):
        return None
    if prior is not None and prior["status"] == "done":
        before = prior.get("weights", {})
        if before == identity:
            return UNCHANGED
        changed = [
            what
            for what, keys in (
                ("prompts", ("prompts_sha256",)),
                ("settings", ("settings_sha256",)),
            )
            if any(before.get(k) != identity.get(k) for k in keys)
        ]
        other = {k for k in set(before) | set(identity) if k not in ("prompts_sha256", "settings_sha256")}
        if any(before.get(k) != identity.get(k) for k in other):
            changed.insert(0, "weights")
        return f"output exists, made with other {' and '.join(changed)} (pass --overwrite to redo it)"
    return "output exists (pass --overwrite to replace it)"


def _report_path(output_dir: Path, started: datetime, shard: Shard | None) -> Path:
    stamp = started.strftime("%Y%m%dT%H%M%SZ") + ("" if shard is None else f"-shard-{shard.index}-of-{shard.count}")
    path, n = output_dir / f"sammoe-run-{stamp}.json", 1
    while path.exists():
        n += 1
        path = output_dir / f"sammoe-run-{stamp}-{n}.json"
    return path


def _progress(total: int, quiet: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc="segment", unit="volume", disable=quiet or not sys.stderr.isatty())


def run_batch(
    items: list[BatchItem],
    output_dir: str | Path,
    engine: Engine,
    settings: SegmentSettings | None = None,
    *,
    shard: Shard | None = None,
    quiet: bool = False,
    source: str | Path | None = None,
) -> BatchReport:
    """Segment the items of ``shard`` (all when None) that are not done yet; return the report.

    The report is also written as ``sammoe-run-<UTC time>[-shard-I-of-N].json`` in
    ``output_dir``; its ``report_path`` says where. A failing item is recorded and the run goes
    on; rerunning skips what is done and retries what failed or never finished.
    """
    settings = settings or SegmentSettings()
    output_dir = Path(output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{output_dir}: cannot make the output folder ({e.strerror or e})") from None
    selected = shard.select(items) if shard is not None else list(items)
    for item in selected:  # before any work: an output may never replace an input
        if item.output.exists() and item.output.resolve() == Path(item.input).resolve():
            raise InputError(
                f"{item.output}: the output would replace the input {item.input}; choose another output folder"
            )
    model = engine.describe()
    weights = {**weights_hashes(model), "settings_sha256": settings.digest(model)}
    manifest = RunManifest(output_dir, shard)
    records: dict[str, dict[str, Any]] = {}
    todo = []
    for item in selected:
        identity = dict(weights)
        prompts = item_prompts_digest(item, settings)
        if prompts is not None:
            identity["prompts_sha256"] = prompts
        prior = manifest.prior(item.key)
        reason = _skip_reason(item, prior, identity, settings.overwrite)
        if reason is None:
            unrecorded = prior is not None and prior["status"] == "pending" and item.output.exists()
            todo.append(replace(item, resume=True) if unrecorded else item)
        else:
            records[item.key] = {"key": item.key, "input": str(item.input), "status": "skipped", "reason": reason}
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    manifest.begin(todo)
    pending = {item.key: item for item in todo}
    bar = _progress(len(todo), quiet)
    try:
        if todo:
            for record in engine.run(todo, settings):
                manifest.record(pending[record["key"]], record)
                records[record["key"]] = record
                bar.update(1)
    finally:
        bar.close()
        manifest.finish()
    seconds = time.perf_counter() - clock
    cases = [{"case": item.name, **records[item.key]} for item in selected if item.key in records]
    counts = {status: sum(c["status"] == status for c in cases) for status in COUNTED}
    report = {
        "sammoe_version": __version__,
        "started_utc": started.isoformat(timespec="seconds"),
        "input": None if source is None else str(source),
        "output": str(output_dir),
        **engine.info(),
        "shard": None if shard is None else str(shard),
        "manifest": str(manifest.path),
        "model": model,
        "settings": settings.to_dict(),
        "counts": counts,
        "seconds": round(seconds, 3),
        "volumes_per_minute": round(counts["done"] * 60 / seconds, 3) if seconds > 0 else 0.0,
        "cases": cases,
    }
    report_path = _report_path(output_dir, started, shard)
    write_text_atomic(report_path, json.dumps(report, indent=2) + "\n")
    return BatchReport(report, report_path)


def segment_batch(
    source: str | Path,
    output_dir: str | Path,
    engine: Engine,
    settings: SegmentSettings | None = None,
    *,
    shard: Shard | str | None = None,
    quiet: bool = False,
) -> BatchReport:
    """Segment a folder of volumes or the volumes a CSV/JSONL manifest lists (see :func:`run_batch`)."""
    shard = Shard.parse(shard) if isinstance(shard, str) else shard
    return run_batch(
        list_items(source, output_dir), output_dir, engine, settings, shard=shard, quiet=quiet, source=source
    )


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
    statistics: bool = False,
    split: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    max_crops: int | None = None,
    shard: Shard | str | None = None,
) -> BatchReport:
    """Segment every case of ``input_dir`` into ``output_dir`` (``<case>.nii.gz`` and friends) here.

    Each case uses ``prompts`` when given, else its own ``<case>.prompts.json`` beside it;
    ``statistics`` and ``split`` add ``<case>.statistics.json`` and ``<case>/<target>.nii.gz``.
    Returns the run report (see :func:`run_batch`).
    """
    settings = SegmentSettings(
        prompts=None if prompts is None else tuple(prompts),
        modality=modality,
        clicks=clicks,
        preview=preview,
        probabilities=probabilities,
        statistics=statistics,
        split=split,
        overwrite=overwrite,
        max_crops=max_crops,
    )
    shard = Shard.parse(shard) if isinstance(shard, str) else shard
    items = folder_items(input_dir, output_dir)
    return run_batch(items, output_dir, LocalEngine(predictor), settings, shard=shard, quiet=quiet, source=input_dir)
