"""Weights on disk: official ``.pth`` import, strict safetensors save and load.

* Official checkpoints are read with ``torch.load(weights_only=True)`` (never plain pickle). A
  bare state dict and ``{"model_state_dict": ...}`` (what train.py saves) are both accepted;
  a ``module.`` prefix is stripped. The CVPR-2025 box embeddings are recognised by name.
* sammoe's own files are safetensors whose header carries the config and two digests: the
  SHA-256 of the source file it was converted from, and the SHA-256 of its own tensors
  (checked on every load, so a tampered or damaged file is refused).
* Every load is strict: a missing key, an unexpected key or a wrong shape is an error that
  names them.
"""

from __future__ import annotations

import argparse
import functools
import json
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from sammoe_core.errors import WeightsError
from sammoe_core.files.atomic import atomic_output
from sammoe_core.files.hashing import sha256_file, sha256_tensors
from sammoe_core.model.configs import SamConfig, get_config
from sammoe_core.model.sam3d import Sam3D

__all__ = ["WeightsError", "load_model", "load_weights", "save_weights"]

BOX_KEYS = ("prompt_encoder.point_embeddings.2.weight", "prompt_encoder.point_embeddings.3.weight")
DEFAULT_CONFIG = "sam-med3d-vit-b"
BOX_CONFIG = "sam-med3d-vit-b-box"
_LIST_LIMIT = 12


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:_LIST_LIMIT])
    more = len(keys) - _LIST_LIMIT
    return shown + (f" (+{more} more)" if more > 0 else "")


def expected_shapes(config: SamConfig) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a network of this config, built on the meta device (no memory)."""
    return dict(_shapes_of(config))


@functools.lru_cache(maxsize=8)
def _shapes_of(config: SamConfig) -> tuple[tuple[str, tuple[int, ...]], ...]:
    # once per config and process: the foundation and every expert delta are checked against it
    with torch.device("meta"):
        model = Sam3D(config)
    return tuple((k, tuple(v.shape)) for k, v in model.state_dict().items())


def check_state_dict(state: dict[str, torch.Tensor], config: SamConfig, source: str, partial: bool = False) -> None:
    """Raise :class:`WeightsError` naming missing / unexpected keys and wrong shapes.

    ``partial=True`` allows missing keys (expert deltas override a subset of tensors).
    """
    expected = expected_shapes(config)
    problems = []
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing and not partial:
        problems.append(f"missing keys: {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_names(unexpected)}")
    wrong = [
        f"{k} {tuple(state[k].shape)} != {expected[k]}"
        for k in sorted(set(state) & set(expected))
        if tuple(state[k].shape) != expected[k]
    ]
    if wrong:
        problems.append(f"wrong shapes: {_names(wrong)}")
    bad_dtype = sorted(k for k, t in state.items() if not t.is_floating_point())
    if bad_dtype:
        problems.append(f"non-float tensors: {_names(bad_dtype)}")
    if problems:
        raise WeightsError(f"{source}: does not fit config {config.name!r}: " + "; ".join(problems))


def read_official_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read an official SAM-Med3D ``.pth`` as a plain state dict (weights_only, module. stripped)."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{path}: no such file")
    if not path.is_file():
        raise WeightsError(f"{path}: not a regular file (a folder, pipe or device)")
    try:
        # train.py's full checkpoints also hold an argparse.Namespace; that one plain class is
        # allowed, nothing else that pickle could construct.
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(
            f"{path}: refused by the weights-only loader ({first}); sammoe never runs pickled code"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from None
    if isinstance(obj, dict) and "model_state_dict" in obj:
        obj = obj["model_state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        top = sorted(map(str, obj)) if isinstance(obj, dict) else [type(obj).__name__]
        raise WeightsError(f"{path}: expected a state dict or {{'model_state_dict': ...}}, found keys {_names(top)}")
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in obj.items()}


def config_for_state(state: dict[str, torch.Tensor], requested: str | None, source: str) -> SamConfig:
    """Pick the config for an official state dict; box embeddings select the box config."""
    has_box = [k for k in BOX_KEYS if k in state]
    if requested is None:
        return get_config(BOX_CONFIG if has_box else DEFAULT_CONFIG)
    cfg = get_config(requested)
    if has_box and not cfg.box_prompts:
        raise WeightsError(
            f"{source}: holds the CVPR-2025 box embeddings ({', '.join(has_box)}) but config "
            f"{cfg.name!r} has none; convert with --config {BOX_CONFIG}"
        )
    return cfg


def sort_header(path: str | Path) -> None:
    """Rewrite a safetensors header with its keys sorted, in place.

    safetensors serialises the header from a hash map, so the same tensors and metadata come
    out in a different key order (and sha256) each time; sorted, a file is reproducible.
    """
    with open(path, "r+b") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        if len(text) <= size:  # always, as both are compact JSON; padding is spaces, as safetensors pads
            f.seek(8)
            f.write(text.ljust(size, b" "))


def save_weights(
    state: dict[str, torch.Tensor],
    path: str | Path,
    config: SamConfig,
    metadata: dict[str, str] | None = None,
    overwrite: bool = False,
) -> str:
    """Write tensors as safetensors (atomically, reproducibly) with config and content digest; return file sha256."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    meta = {
        "format": "pt",
        "sammoe_config": config.name,
        "sammoe_config_json": config.model_dump_json(),
        "tensors_sha256": sha256_tensors(tensors),
    }
    meta.update(metadata or {})
    with atomic_output(path, overwrite=overwrite) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
        sort_header(tmp)
        digest = sha256_file(tmp)
    return digest


def read_metadata(path: str | Path) -> dict[str, str]:
    """The header metadata of a safetensors file, without reading any tensor."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError) as e:
        raise WeightsError(f"{path}: not a readable safetensors file ({e})") from None


def config_from_metadata(meta: dict[str, str], source: str) -> SamConfig:
    """The network config a sammoe safetensors header records (validated: bounded sizes)."""
    from pydantic import ValidationError

    if "sammoe_config_json" in meta:
        try:
            return SamConfig.model_validate_json(meta["sammoe_config_json"])
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "config"
            raise WeightsError(f"{source}: invalid network config in the header: {where}: {first['msg']}") from None
    if "sammoe_config" in meta:
        try:
            return get_config(meta["sammoe_config"])
        except KeyError as e:
            raise WeightsError(f"{source}: the header names {e}") from None
    raise WeightsError(f"{source}: no sammoe config in the safetensors header; pass the config name")


def load_weights(
    path: str | Path,
    expected_sha256: str | None = None,
    device: str | torch.device = "cpu",
    allow_unverified: bool = False,
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a sammoe safetensors file, verifying the file and content digests.

    Every file sammoe writes carries the digest of its tensors; a file without one (made
    elsewhere), and any non-finite weight, is an error unless ``allow_unverified``."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{path}: no such file")
    if not path.is_file():
        raise WeightsError(f"{path}: not a regular file (a folder, pipe or device)")
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise WeightsError(f"{path}: sha256 mismatch (expected {expected_sha256}, file has {actual})")
    meta = read_metadata(path)
    try:
        state = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, RuntimeError) as e:
        raise WeightsError(f"{path}: damaged or truncated safetensors file ({e})") from None
    want = meta.get("tensors_sha256")
    if want is None and not allow_unverified:
        raise WeightsError(
            f"{path}: no content digest in its header (every file sammoe writes has one); for a file made "
            "elsewhere pass --allow-unverified, or convert it with `sammoe convert`"
        )
    if want is not None and sha256_tensors(state) != want:
        raise WeightsError(f"{path}: tensor content does not match the digest in its header (tampered or damaged)")
    if not allow_unverified:
        for name in sorted(state):
            tensor = state[name]
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise WeightsError(f"{path}: tensor {name} holds NaN or infinite values")
    return state, meta


def load_model(
    path: str | Path,
    config: SamConfig | str | None = None,
    device: str | torch.device = "cpu",
    expected_sha256: str | None = None,
    allow_unverified: bool = False,
) -> Sam3D:
    """Build a network from a sammoe safetensors file, strictly; eval mode, on ``device``."""
    state, meta = load_weights(path, expected_sha256, allow_unverified=allow_unverified)
    cfg = get_config(config) if isinstance(config, str) else config
    cfg = cfg or config_from_metadata(meta, str(path))
    check_state_dict(state, cfg, str(path))
    with torch.device("meta"):
        model = Sam3D(cfg)
    # Copy into freshly allocated (aligned) storage rather than assigning the loaded buffers:
    # kernels may pick other code paths for unaligned memory, which breaks bit-identity. (Not
    # Module.to_empty: its empty_like on meta tensors runs torch's Python reference kernels,
    # whose first use imports sympy, about a second of every `sammoe segment`.)
    fresh = {
        name: torch.empty(like.shape, dtype=like.dtype, device=device).copy_(state[name])
        for name, like in model.state_dict().items()
    }
    model.load_state_dict(fresh, strict=True, assign=True)
    return model.eval()


@dataclass(frozen=True)
class ConvertResult:
    config: str
    source_sha256: str
    output_sha256: str
    num_tensors: int
    num_elements: int


def convert_checkpoint(
    src: str | Path, dst: str | Path, config: str | None = None, overwrite: bool = False
) -> ConvertResult:
    """Official ``.pth`` -> strict, self-describing safetensors file."""
    src, dst = Path(src), Path(dst)
    if dst.exists() and dst.resolve() == src.resolve():
        raise WeightsError(f"{dst}: the output would replace the checkpoint it converts; choose another path")
    state = read_official_checkpoint(src)
    cfg = config_for_state(state, config, str(src))
    check_state_dict(state, cfg, str(src))
    source_sha = sha256_file(src)
    out_sha = save_weights(
        state,
        dst,
        cfg,
        metadata={"source_sha256": source_sha, "source_name": src.name},
        overwrite=overwrite,
    )
    return ConvertResult(
        config=cfg.name,
        source_sha256=source_sha,
        output_sha256=out_sha,
        num_tensors=len(state),
        num_elements=sum(t.numel() for t in state.values()),
    )
