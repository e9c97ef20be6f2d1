"""Expert weights as deltas over their foundation: make, save, open lazily, compose.

An expert's safetensors file holds only the tensors that differ from its foundation (a
decoder-only finetune is a few per cent of the network). Its header carries the network config,
the foundation's sha256 and the digest of its own tensors. :class:`ExpertWeights` reads the
header on demand and the tensors only when the expert is used, checking the file's sha256 the
first time. :func:`compose` builds a network that shares every unchanged parameter with the
foundation instead of copying it.

torch is imported inside the functions that need tensors, so listing experts stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sammoe_core.errors import SammoeError

if TYPE_CHECKING:
    import torch

    from sammoe_core.model import Sam3D, SamConfig

PART_PREFIXES = {
    "image_encoder": "image_encoder.",
    "prompt_encoder": "prompt_encoder.",
    "mask_decoder": "mask_decoder.",
}
PART_PRESETS = {
    "decoder": ("prompt_encoder", "mask_decoder"),
    "all": ("image_encoder", "prompt_encoder", "mask_decoder"),
}
DELTA_KIND = "expert-delta"


def part_prefixes(parts: str | Sequence[str]) -> tuple[str, ...]:
    """'decoder' | 'all' | network part names -> the tensor-name prefixes they cover."""
    names = PART_PRESETS.get(parts, (parts,)) if isinstance(parts, str) else tuple(parts)
    unknown = [n for n in names if n not in PART_PREFIXES]
    if unknown or not names:
        raise SammoeError(
            f"unknown network parts {unknown or list(names)}; use {', '.join(PART_PRESETS)} or "
            f"a list of {', '.join(PART_PREFIXES)}"
        )
    return tuple(PART_PREFIXES[n] for n in names)


def make_delta(
    foundation_state: Mapping[str, torch.Tensor],
    finetuned_state: Mapping[str, torch.Tensor],
    parts: str | Sequence[str],
) -> dict[str, torch.Tensor]:
    """The tensors of ``finetuned_state`` that differ from ``foundation_state`` (CPU copies).

    ``parts`` names what the finetune trained; a tensor changed outside them means the wrong
    parts were given (or the foundation was not frozen) and is an error, as is no change at all.
    """
    import torch

    prefixes = part_prefixes(parts)
    only_one = sorted(set(foundation_state) ^ set(finetuned_state))
    if only_one:
        raise SammoeError(f"the two state dicts hold different tensors: {', '.join(only_one[:8])}")
    changed = []
    for key in sorted(finetuned_state):
        base, tuned = foundation_state[key].detach().cpu(), finetuned_state[key].detach().cpu()
        if base.shape != tuned.shape:
            raise SammoeError(f"{key}: shape {tuple(tuned.shape)} differs from the foundation's {tuple(base.shape)}")
        if not torch.equal(base, tuned):
            changed.append(key)
    outside = [k for k in changed if not k.startswith(prefixes)]
    if outside:
        raise SammoeError(
            f"{len(outside)} tensors changed outside the parts {list(prefixes)}: {', '.join(outside[:8])}"
        )
    if not changed:
        raise SammoeError("no tensor differs from the foundation: the finetune changed nothing")
    return {k: finetuned_state[k].detach().cpu().contiguous() for k in changed}


def overrides_encoder(delta: Mapping[str, object] | ExpertWeights | Iterable[str]) -> bool:
    """Whether a delta replaces image-encoder tensors (if not, the encoder pass can be shared)."""
    keys = delta.keys() if hasattr(delta, "keys") else delta
    return any(k.startswith(PART_PREFIXES["image_encoder"]) for k in keys)


def compose(foundation: Sam3D, delta: Mapping[str, torch.Tensor]) -> Sam3D:
    """A new network: ``delta``'s tensors over ``foundation``'s, sharing all the others.

    The unchanged parameters are the foundation's own storage (no copy), so the result is for
    inference: training it in place would change the foundation too. Eval mode, on the
    foundation's device, each delta tensor cast to the foundation tensor's dtype.
    """
    import torch

    from sammoe_core.model import Sam3D
    from sammoe_core.model.checkpoint import check_state_dict

    check_state_dict(dict(delta), foundation.config, "expert delta", partial=True)
    state = foundation.state_dict()
    for key, tensor in delta.items():
        state[key] = tensor.to(device=state[key].device, dtype=state[key].dtype)
    with torch.device("meta"):
        model = Sam3D(foundation.config)
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


def save_delta(
    delta: Mapping[str, torch.Tensor],
    path: str | Path,
    config: SamConfig,
    foundation_sha256: str,
    overwrite: bool = False,
) -> str:
    """Write a delta as safetensors (atomically), the foundation's hash in its header; return sha256."""
    from sammoe_core.model.checkpoint import check_state_dict, save_weights

    check_state_dict(dict(delta), config, str(path), partial=True)
    meta = {"sammoe_kind": DELTA_KIND, "sammoe_foundation_sha256": foundation_sha256}
    return save_weights(dict(delta), path, config, metadata=meta, overwrite=overwrite)


def read_header(path: str | Path) -> tuple[list[str], dict[str, str]]:
    """Tensor names and header metadata of a safetensors file, without torch or any tensor read."""
    from safetensors import SafetensorError, safe_open

    if not Path(path).is_file():
        raise SammoeError(f"{path}: weights file missing")
    try:
        with safe_open(str(path), framework="numpy") as f:
            return sorted(f.keys()), dict(f.metadata() or {})
    except (SafetensorError, OSError) as e:
        raise SammoeError(f"{path}: not a readable safetensors file ({e})") from None


class ExpertWeights:
    """An expert's delta file: the header is read on demand, the tensors only by :meth:`load`."""

    def __init__(self, path: str | Path, sha256: str) -> None:
        self.path = Path(path)
        self.sha256 = sha256
        self._keys: list[str] | None = None
        self._metadata: dict[str, str] | None = None
        self._verified = False

    def _read_header(self) -> None:
        self._keys, self._metadata = read_header(self.path)

    def keys(self) -> list[str]:
        """Tensor names in the file (from the header: no tensor is read)."""
        if self._keys is None:
            self._read_header()
        return list(self._keys or [])

    @property
    def metadata(self) -> dict[str, str]:
        if self._metadata is None:
            self._read_header()
        return dict(self._metadata or {})

    @property
    def overrides_encoder(self) -> bool:
        return overrides_encoder(self.keys())

    def verify(self) -> None:
        """Check the file against its expected sha256 (once per object; raises on mismatch)."""
        from sammoe_core.files.hashing import sha256_file
        from sammoe_core.model.checkpoint import WeightsError

        if self._verified:
            return
        if not self.path.is_file():
            raise SammoeError(f"{self.path}: expert weights file missing")
        actual = sha256_file(self.path)
        if actual != self.sha256:
            raise WeightsError(
                f"{self.path}: sha256 mismatch (manifest says {self.sha256}, file has {actual}): "
                "tampered with or damaged"
            )
        self._verified = True

    def load(self, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        """The delta tensors, checked: file sha256, content digest, shapes against the header's config."""
        from sammoe_core.model.checkpoint import check_state_dict, config_from_metadata, load_weights

        self.verify()
        state, meta = load_weights(self.path, device=device)
        check_state_dict(state, config_from_metadata(meta, str(self.path)), str(self.path), partial=True)
        return state
