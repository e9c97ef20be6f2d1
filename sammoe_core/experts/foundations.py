"""Foundations: the frozen networks experts are finetuned from, registered by plugins or chosen
by path, and the one in use (``sammoe foundation set``).

A foundation is known by the sha256 of its weights file; an expert names that hash and is
refused on any other foundation.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from sammoe_core.errors import SammoeError, StateError
from sammoe_core.experts.manifest import SHA256
from sammoe_core.experts.registry import FoundationChoice, Registry

if TYPE_CHECKING:
    import torch

    from sammoe_core.model import Sam3D
    from sammoe_core.plugins.host import PluginHost

BUILTIN_FOUNDATION = "sammoe-small"


class NoFoundation(StateError):
    """No foundation is chosen, registered or built in."""


class FoundationSpec(BaseModel):
    """A foundation's identity and where its weights are."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    config: str = Field(min_length=1, description="network config name")
    weights: Path
    sha256: str = Field(pattern=SHA256, description="sha256 of the weights file")
    hub_id: str | None = None

    @classmethod
    def from_file(cls, path: str | Path, name: str | None = None) -> FoundationSpec:
        """Describe a sammoe safetensors file (config from its header; hashes the file)."""
        from sammoe_core.experts.weights import read_header
        from sammoe_core.files.hashing import sha256_file
        from sammoe_core.model.checkpoint import load_model

        path = Path(path).expanduser().resolve()
        _, meta = read_header(path)
        if "sammoe_config" not in meta:
            raise SammoeError(f"{path}: no sammoe config in its header; convert it with `sammoe convert` first")
        if meta.get("sammoe_kind") == "expert-delta":
            raise SammoeError(f"{path}: is an expert's delta, not a foundation")
        load_model(path)  # every check a foundation gets when used: digest, finite values, strict keys
        return cls(name=name or path.stem, config=meta["sammoe_config"], weights=path, sha256=sha256_file(path))

    def load(self, device: str | torch.device = "cpu") -> Sam3D:
        """The network, strictly loaded after checking the file's sha256; eval mode."""
        from sammoe_core.devices import resolve_device
        from sammoe_core.model.checkpoint import load_model

        model = load_model(self.weights, device=resolve_device(device), expected_sha256=self.sha256)
        if model.config.name != self.config:
            raise SammoeError(
                f"{self.weights}: holds config {model.config.name!r}, foundation {self.name!r} says {self.config!r}"
            )
        return model


def _accept(plugin: str, spec: FoundationSpec) -> tuple[str, FoundationSpec]:
    if not isinstance(spec, FoundationSpec):
        raise SammoeError(f"register_foundations: expected a FoundationSpec, got {type(spec).__name__}")
    return spec.name, spec


def registered_foundations(host: PluginHost | None = None) -> dict[str, FoundationSpec]:
    """Foundations registered by plugins (the built-in one among them, when it exists)."""
    from sammoe_core.plugins.host import get_host

    return dict(sorted((host or get_host()).collect("register_foundations", _accept).items()))


def _looks_like_path(name: str) -> bool:
    return name.endswith(".safetensors") or "/" in name or "\\" in name or Path(name).is_file()


def _from_choice(choice: FoundationChoice, host: PluginHost | None) -> FoundationSpec:
    if choice.path is not None:
        return FoundationSpec(
            name=choice.name,
            config=choice.config,
            weights=Path(choice.path),
            sha256=choice.sha256,
            hub_id=choice.hub_id,
        )
    return resolve_foundation(choice.name, host=host)


def _from_hub(uri: str, config: str | None = None, progress: bool = False) -> FoundationSpec:
    from sammoe_core.hub.checkpoints import fetch_foundation
    from sammoe_core.hub.location import parse_hub_uri

    return fetch_foundation(parse_hub_uri(uri, want_path=True), config=config, progress=progress)


def resolve_foundation(name: str | None = None, host: PluginHost | None = None) -> FoundationSpec:
    """A registered foundation by name, a weights file by path or Hub location (``hf://ORG/REPO/FILE``,
    fetched and converted once), or (None) the one in use: the chosen one, else the built-in one;
    :class:`NoFoundation` if there is none."""
    from sammoe_core.hub.location import is_hub_uri

    if name is not None and is_hub_uri(name):
        return _from_hub(name)
    if name is not None and _looks_like_path(name):
        return FoundationSpec.from_file(name)
    if name is None:
        choice = Registry().read().foundation
        if choice is not None:
            return _from_choice(choice, host)
    registered = registered_foundations(host)
    wanted = name or BUILTIN_FOUNDATION
    if wanted in registered:
        return registered[wanted]
    known = ", ".join(registered) or "none"
    if name is not None:
        raise NoFoundation(f"no foundation named {name!r} (registered: {known})")
    raise NoFoundation(
        f"no foundation available: none chosen, and the built-in {BUILTIN_FOUNDATION!r} is not installed "
        f"(registered: {known}); run `sammoe foundation set PATH` with a sammoe .safetensors file "
        "(`sammoe convert` makes one from an official SAM-Med3D checkpoint)"
    )


def choose_foundation(
    name_or_path: str, host: PluginHost | None = None, config: str | None = None, progress: bool = False
) -> FoundationSpec:
    """Make a registered foundation (by name), a weights file (by path) or a Hub file
    (``hf://ORG/REPO[@REV]/FILE.pth``, converted with network ``config``, default detected) the one in use."""
    from sammoe_core.hub.location import is_hub_uri

    if is_hub_uri(name_or_path):
        spec = _from_hub(name_or_path, config=config, progress=progress)
    else:
        if config is not None:
            raise SammoeError("--config applies to checkpoints fetched from the Hub (hf://...), which sammoe converts")
        spec = resolve_foundation(name_or_path, host=host)
    if _looks_like_path(name_or_path):  # a file, local or on the Hub
        choice = FoundationChoice(
            name=spec.name, path=str(spec.weights), config=spec.config, sha256=spec.sha256, hub_id=spec.hub_id
        )
    else:
        choice = FoundationChoice(name=spec.name)
    Registry().choose_foundation(choice)
    return spec


def describe_foundations(host: PluginHost | None = None) -> list[dict[str, object]]:
    """Registered foundations plus a chosen weights file, each marked whether it is in use."""
    specs = list(registered_foundations(host).values())
    choice = Registry().read().foundation
    if choice is not None and choice.path is not None:
        specs.append(_from_choice(choice, host))
    try:
        current = resolve_foundation(host=host)
    except NoFoundation:
        current = None
    return [{**spec.model_dump(mode="json"), "in_use": spec == current} for spec in specs]
