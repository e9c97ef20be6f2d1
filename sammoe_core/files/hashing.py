"""SHA-256 of files and of tensor dictionaries (the integrity checks every weight file gets)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import torch

_CHUNK = 1 << 22


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_tensors(tensors: Mapping[str, torch.Tensor]) -> str:
    """Hex SHA-256 over (name, dtype, shape, bytes) of each tensor, in name order.

    Independent of file layout, so a safetensors file can carry the digest of its own content
    in its header and be checked after loading.
    """
    import torch

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def cached_sha256(path: str | Path, cache_file: str | Path | None) -> str:
    """:func:`sha256_file`, remembered in ``cache_file`` (JSON) by resolved path, size and mtime:
    recomputed only when the file changed. A cache that cannot be read or written is ignored."""
    path = Path(path).resolve()
    st = path.stat()
    stamp = [st.st_size, st.st_mtime_ns]
    cache: dict[str, Any] = {}
    if cache_file is not None:
        try:
            loaded = json.loads(Path(cache_file).read_text(encoding="utf-8"))
            cache = loaded if isinstance(loaded, dict) else {}
            hit = cache.get(str(path))
            if isinstance(hit, dict) and hit.get("stamp") == stamp and isinstance(hit.get("sha256"), str):
                return cast(str, hit["sha256"])
        except (OSError, ValueError):
            cache = {}
    digest = sha256_file(path)
    if cache_file is not None:
        cache[str(path)] = {"stamp": stamp, "sha256": digest}
        try:
            from sammoe_core.files.atomic import write_text_atomic

            Path(cache_file).parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(cache_file, json.dumps(cache), overwrite=True)
        except OSError:
            pass  # a read-only home: verification still happened, only its memo is lost
    return digest


def file_hash_cache() -> Path:
    """Where :func:`cached_sha256` remembers digests: ``SAMMOE_HOME/cache/file-hashes.json``."""
    from sammoe_core.home import Home

    return Home.current().file_hashes
