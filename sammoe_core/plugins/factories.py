"""Named factories plugins register: expert-selection policies and gate architectures.

Both hooks have the same shape, ``register(name, factory, options=Model)``; the mixture-of-experts
code decides what a factory must return. Names are lowercase slugs, unique across plugins. Each
factory has an *options model*: a pydantic model of the keyword options it takes (a gate's
hyper-parameters, a policy's settings), or, without one, a model derived from the factory's
keyword parameters. Options are validated against it before anything is built, so unknown or
out-of-range values are errors naming the option, never tracebacks or silently ignored.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from sammoe_core.errors import InputError, PluginError, SammoeError

if TYPE_CHECKING:
    from sammoe_core.plugins.host import PluginHost

Factory = Callable[..., Any]
_SLUG = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")


def _check_name(name: str, factory: Factory) -> None:
    if not isinstance(name, str) or not _SLUG.match(name):
        raise SammoeError(f"{name!r} is not a valid name (lowercase letters, digits, '-' or '_')")
    if not callable(factory):
        raise SammoeError(f"{name!r}: the factory is not callable ({type(factory).__name__})")


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


class OptionError(InputError):
    """An option a policy or gate does not take, or a value it does not accept."""

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class Registered:
    """A registered factory and the model of the options it takes."""

    kind: str  # "gate" or "policy": how messages name it
    name: str
    factory: Factory
    options: type[BaseModel]

    def validate(self, options: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        """``options`` checked against the options model; an :class:`OptionError` (prefixed by
        ``where``, e.g. the file the options came from)."""
        prefix = f"{where}: " if where else ""
        if not isinstance(options, Mapping):
            raise InputError(f"{prefix}{self.kind} options must be an object")
        try:
            return self.options.model_validate(dict(options)).model_dump()
        except ValidationError as e:
            first = e.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "options"
            known = ", ".join(self.options.model_fields) or "none"
            raise OptionError(
                f"{prefix}{self.kind} {self.name!r} option {field}: {first['msg']} (its options: {known})", field
            ) from None

    def build(self, *args: Any, options: Mapping[str, Any] | None = None, where: str = "") -> Any:
        """The factory's product for validated ``options`` (positional ``args`` go first)."""
        return self.factory(*args, **self.validate(options or {}, where))


def _acceptor(kind: str, skip: int) -> Callable[..., tuple[str, Registered]]:
    def accept(
        plugin: str, name: str, factory: Factory, options: type[BaseModel] | None = None
    ) -> tuple[str, Registered]:
        _check_name(name, factory)
        if options is None:
            try:
                options = options_from_signature(name, factory, skip=skip)
            except (TypeError, ValueError) as e:
                raise PluginError(f"{name!r}: cannot read the factory's parameters ({e}); pass options=") from None
        elif not (isinstance(options, type) and issubclass(options, BaseModel)):
            raise PluginError(f"{name!r}: options must be a pydantic model class, not {type(options).__name__}")
        return name, Registered(kind, name, factory, options)

    return accept


def _collect(hook: str, host: PluginHost | None, accept: Callable[..., tuple[str, Any]]) -> dict[str, Any]:
    from sammoe_core.plugins.host import get_host

    return dict(sorted((host or get_host()).collect(hook, accept).items()))


def policy_factories(host: PluginHost | None = None) -> dict[str, Registered]:
    """Expert-selection policies by name (hook ``register_policies``)."""
    return _collect("register_policies", host, _acceptor("policy", skip=0))


def gate_factories(host: PluginHost | None = None) -> dict[str, Registered]:
    """Gate architectures by name (hook ``register_gates``)."""
    return _collect("register_gates", host, _acceptor("gate", skip=2))
