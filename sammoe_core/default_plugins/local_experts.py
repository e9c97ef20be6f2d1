"""Registers the experts added as folders (``sammoe add-expert DIR``) from SAMMOE_HOME."""

from __future__ import annotations

from ..hookspecs import hookimpl


@hookimpl
def register_experts(register):
    from ..experts.expert import ExpertSource
    from ..experts.registry import Registry

    registry = Registry()
    for record in registry.read().experts.values():
        if record.path is not None:
            register(registry.home / record.path, source=ExpertSource(record.source, origin=record.origin))
