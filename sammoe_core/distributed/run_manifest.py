"""The run manifest: every input's status in one JSON Lines file in the output folder.

``sammoe-manifest.jsonl`` (``sammoe-manifest.shard-I-of-N.jsonl`` for a shard, so that the
tasks of a Slurm array never write the same file) starts with a header line, then one line per
input: its key, input and output paths, ``status`` (``pending``, ``done`` or ``failed``), for
``done`` the hashes of the weights used, for ``failed`` the error. A run writes the whole file
atomically when it starts (this run's inputs ``pending``) and when it ends, and appends one line
(flushed to disk) as each input finishes, so a killed run loses nothing it finished; the last
line of a key wins, and a line cut short by the kill is ignored. A run holds a lock on its
manifest, so two runs cannot write the same one. Done entries of the other manifests in the
folder count too: an unsharded rerun skips what the shards finished.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sammoe_core.distributed.inputs import BatchItem, Shard
from sammoe_core.errors import SammoeError
from sammoe_core.files.atomic import write_text_atomic

MANIFEST_FORMAT = "sammoe-run-manifest"
MANIFEST_VERSION = 1
STATUSES = ("pending", "done", "failed")


def manifest_path(output_dir: str | Path, shard: Shard | None = None) -> Path:
    """Where the run manifest of ``output_dir`` (and of one shard) lives."""
    name = "sammoe-manifest.jsonl" if shard is None else f"sammoe-manifest.shard-{shard.index}-of-{shard.count}.jsonl"
    return Path(output_dir) / name


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_manifest(path: str | Path) -> dict[str, dict[str, Any]]:
    """Entries by key (the last line of a key wins); unreadable lines are skipped."""
    entries: dict[str, dict[str, Any]] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return entries
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
        if isinstance(entry, dict) and isinstance(entry.get("key"), str) and entry.get("status") in STATUSES:
            entries[entry["key"]] = entry
    return entries


def manifest_entry(item: BatchItem, status: str, record: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest line of an item: paths and status, plus weights (done) or error (failed)."""
    entry: dict[str, Any] = {"key": item.key, "input": str(item.input), "output": str(item.output), "status": status}
    record = record or {}
    if status == "done":
        entry["weights"] = record.get("weights", {})
    if status == "failed":
        entry["error"] = record.get("error", "")
    if "seconds" in record:
        entry["seconds"] = record["seconds"]
    entry["utc"] = _now()
    return entry


class RunManifest:
    """The manifest of one output folder (and shard), held locked while a run writes it."""

    def __init__(self, output_dir: str | Path, shard: Shard | None = None) -> None:
        self.path = manifest_path(output_dir, shard)
        self.shard = shard
        self.entries = read_manifest(self.path)
        self._done_elsewhere: dict[str, dict[str, Any]] = {}
        for other in sorted(Path(output_dir).glob("sammoe-manifest*.jsonl")):
            if other != self.path:
                self._done_elsewhere.update({k: e for k, e in read_manifest(other).items() if e["status"] == "done"})
        self._lock: Any = None

    def prior(self, key: str) -> dict[str, Any] | None:
        """What earlier runs recorded for ``key`` (a ``done`` entry of any manifest first)."""
        own = self.entries.get(key)
        if own is not None and own["status"] == "done":
            return own
        return self._done_elsewhere.get(key, own)

    def _write_all(self) -> None:
        header = {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "shard": None if self.shard is None else str(self.shard),
            "updated_utc": _now(),
        }
        lines = [json.dumps(header)] + [json.dumps(e) for e in self.entries.values()]
        write_text_atomic(self.path, "\n".join(lines) + "\n", overwrite=True)

    def begin(self, pending: list[BatchItem]) -> None:
        """Take the lock, mark ``pending`` items, and write the whole manifest."""
        from filelock import FileLock, Timeout

        lock = FileLock(f"{self.path}.lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise SammoeError(
                f"{self.path}: another run is writing this manifest; wait for it, or use another output folder or shard"
            ) from None
        self._lock = lock
        for item in pending:
            self.entries[item.key] = manifest_entry(item, "pending")
        self._write_all()

    def record(self, item: BatchItem, record: dict[str, Any]) -> dict[str, Any]:
        """Append the finished item's line (flushed to disk) and return it."""
        entry = manifest_entry(item, "done" if record.get("status") == "done" else "failed", record)
        self.entries[item.key] = entry
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return entry

    def finish(self) -> None:
        """Write the whole manifest once more (one line per key) and release the lock."""
        try:
            self._write_all()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None
