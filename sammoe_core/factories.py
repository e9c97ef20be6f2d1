"""Named factories plugins register: expert-selection policies and gate architectures.

Both hooks have the same shape, ``register(name, factory)``; the mixture-of-experts code decides
what a factory must return. Names are lowercase slugs, unique across plugins. A gate
architecture also has an *options model*: ``register(name, factory, options=Model)`` with a
pydantic model of its hyper-parameters, or, without one, a model derived from the factory's
keyword parameters. Hyper-parameters read from a gate file are validated against it before
anything is built, so unknown or out-of-range values are errors, never tracebacks.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from .errors import SammoeError

if TYPE_CHECKING:
    from .plugins import PluginHost

Factory = Callable[..., Any]
_SLUG = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")


def _check_name(name: str, factory: Factory) -> None:
    if not isinstance(name, str) or not _SLUG.match(name):
        raise SammoeError(f"{name!r} is not a valid name (lowercase letters, digits, '-' or '_')")
    if not callable(factory):
        raise SammoeError(f"{name!r}: the factory is not callable ({type(factory).__name__})")


def _accept_factory(plugin: str, name: str, factory: Factory) -> tuple[str, Factory]:
    _check_name(name, factory)
    return name, factory


def options_from_signature(name: str, factory: Factory, skip: int) -> type[BaseModel]:
    """A pydantic model (extra fields forbidden) of ``factory``'s keyword parameters after the
    first ``skip`` positional ones; ``**kwargs`` adds nothing (undeclared options are refused)."""
    fields: dict[str, Any] = {}
    params = list(inspect.signature(factory).parameters.values())[skip:]
    for p in params:
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        annotation = Any if p.annotation is inspect.Parameter.empty else p.annotation
        fields[p.name] = (annotation, ... if p.default is inspect.Parameter.empty else p.default)
    return create_model(f"{name}_options", __config__=ConfigDict(extra="forbid"), **fields)


@dataclass(frozen=True)
class GateArchitecture:
    """A registered gate architecture: its factory and the model of its hyper-parameters."""

    name: str
    factory: Factory
    options: type[BaseModel]

    def validate(self, hparams: Mapping[str, Any], where: str) -> dict[str, Any]:
        """Hyper-parameters checked against the options model; a one-line error naming ``where``."""
        if not isinstance(hparams, Mapping):
            raise SammoeError(f"{where}: gate hyper-parameters must be an object")
        try:
            return self.options.model_validate(dict(hparams)).model_dump()
        except ValidationError as e:
            first = e.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "hparams"
            raise SammoeError(f"{where}: gate {self.name!r} hyper-parameter {field}: {first['msg']}") from None

    def build(self, config: Any, num_candidates: int, hparams: Mapping[str, Any], where: str = "gate") -> Any:
        """The untrained gate module for validated ``hparams``."""
        return self.factory(config, num_candidates, **self.validate(hparams, where))


def _accept_gate(plugin: str, name: str, factory: Factory, options: type[BaseModel] | None = None) -> tuple[str, GateArchitecture]:
    _check_name(name, factory)
    if options is None:
        try:
            options = options_from_signature(name, factory, skip=2)
        except (TypeError, ValueError) as e:
            raise SammoeError(f"{name!r}: cannot read the factory's parameters ({e}); pass options=") from None
    elif not (isinstance(options, type) and issubclass(options, BaseModel)):
        raise SammoeError(f"{name!r}: options must be a pydantic model class, not {type(options).__name__}")
    return name, GateArchitecture(name, factory, options)


def _collect(hook: str, host: PluginHost | None, accept: Callable[..., tuple[str, Any]]) -> dict[str, Any]:
    from .plugins import get_host

    return dict(sorted((host or get_host()).collect(hook, accept).items()))


def policy_factories(host: PluginHost | None = None) -> dict[str, Factory]:
    """Expert-selection policy factories by name (hook ``register_policies``)."""
    return _collect("register_policies", host, _accept_factory)


def gate_factories(host: PluginHost | None = None) -> dict[str, GateArchitecture]:
    """Gate architectures by name (hook ``register_gates``)."""
    return _collect("register_gates", host, _accept_gate)
