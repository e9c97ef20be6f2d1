"""Registers the experts added as folders (``sammoe add-expert DIR``) from SAMMOE_HOME."""

from __future__ import annotations

from sammoe_core.plugins.hookspecs import hookimpl


@hookimpl
def register_experts(register):
    from sammoe_core.errors import StateError
    from sammoe_core.experts.expert import ExpertSource
    from sammoe_core.experts.registry import Registry

    registry = Registry()
    refused = []
    for name, record in registry.read().experts.items():
        if record.path is None or record.pending:  # a pending add may be incomplete
            continue
        try:
            folder = registry.owned_folder(name, record)
        except StateError as e:
            refused.append(str(e))
            continue
        register(folder, source=ExpertSource(record.source, origin=record.origin))
    if refused:  # reported against this plugin (`sammoe plugins --all`); the others are registered
        raise StateError("; ".join(refused))
