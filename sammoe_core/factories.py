"""Named factories plugins register: expert-selection policies and gate architectures.

Both hooks have the same shape, ``register(name, factory)``; the mixture-of-experts code decides
what a factory must return. Names are lowercase slugs, unique across plugins.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import SammoeError

if TYPE_CHECKING:
    from .plugins import PluginHost

Factory = Callable[..., Any]
_SLUG = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")


def _accept_factory(plugin: str, name: str, factory: Factory) -> tuple[str, Factory]:
    if not isinstance(name, str) or not _SLUG.match(name):
        raise SammoeError(f"{name!r} is not a valid name (lowercase letters, digits, '-' or '_')")
    if not callable(factory):
        raise SammoeError(f"{name!r}: the factory is not callable ({type(factory).__name__})")
    return name, factory


def _collect(hook: str, host: PluginHost | None) -> dict[str, Factory]:
    from .plugins import get_host

    return dict(sorted((host or get_host()).collect(hook, _accept_factory).items()))


def policy_factories(host: PluginHost | None = None) -> dict[str, Factory]:
    """Expert-selection policy factories by name (hook ``register_policies``)."""
    return _collect("register_policies", host)


def gate_factories(host: PluginHost | None = None) -> dict[str, Factory]:
    """Gate architecture factories by name (hook ``register_gates``)."""
    return _collect("register_gates", host)
