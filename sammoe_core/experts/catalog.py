"""The experts sammoe knows: those plugins register (installed packages, and the folders added to
SAMMOE_HOME through a default plugin), minus the ones the registry marks disabled."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from sammoe_core.errors import SammoeError
from sammoe_core.experts.expert import Expert, ExpertSource
from sammoe_core.experts.registry import Registry

if TYPE_CHECKING:
    from sammoe_core.plugins.host import PluginHost


def _acceptor(host: PluginHost) -> Callable[..., tuple[str, Expert]]:
    def accept(
        plugin: str, expert: Expert | str | os.PathLike[str], source: ExpertSource | None = None
    ) -> tuple[str, Expert]:
        if not isinstance(expert, Expert):
            if not isinstance(expert, (str, os.PathLike)):
                raise SammoeError(f"register_experts: expected an expert folder or Expert, got {type(expert).__name__}")
            if source is None:
                origin = host.origin(plugin)
                source = ExpertSource("plugin", plugin=plugin, distribution=origin.distribution, version=origin.version)
            expert = Expert.from_folder(expert, source)
        too_old = expert.manifest.sammoe_version_problem()
        if too_old:
            raise SammoeError(too_old)
        return expert.name, expert

    return accept


def _first_come_first_served(host: PluginHost) -> Callable[[str, str], tuple[int, float]]:
    """Who keeps an expert name several plugins register: the plugin the registry recorded for it
    (``add-expert`` records it), else the one whose distribution was installed first."""
    owners = {name: rec.plugin for name, rec in Registry().read().experts.items() if rec.plugin}

    def rank(name: str, plugin: str) -> tuple[int, float]:
        installed = host.origin(plugin).installed_at
        return (0 if owners.get(name) == plugin else 1, installed if installed is not None else float("inf"))

    return rank


def available_experts(host: PluginHost | None = None) -> dict[str, Expert]:
    """Every expert registered by a plugin or added to SAMMOE_HOME, enabled or not, by name.

    A name is first come, first served: a later plugin registering a taken name is reported
    against itself (``sammoe plugins``)."""
    from sammoe_core.plugins.host import get_host

    host = host or get_host()
    return dict(sorted(host.collect("register_experts", _acceptor(host), _first_come_first_served(host)).items()))


def enabled_experts(host: PluginHost | None = None) -> dict[str, Expert]:
    """The available experts the registry does not mark disabled."""
    disabled = Registry().read().disabled()
    return {name: e for name, e in available_experts(host).items() if name not in disabled}


def get_expert(name: str, host: PluginHost | None = None) -> Expert:
    experts = available_experts(host)
    if name not in experts:
        raise SammoeError(f"no expert named {name!r} (available: {', '.join(experts) or 'none'})")
    return experts[name]
