"""Registers the built-in selection policies and the built-in gate architecture."""

from __future__ import annotations

from sammoe_core.plugins.hookspecs import hookimpl


@hookimpl
def register_policies(register):
    from sammoe_core.moe.policies import BUILTIN_POLICIES

    for name, (factory, options) in BUILTIN_POLICIES.items():
        register(name, factory, options=options)


@hookimpl
def register_gates(register):
    from sammoe_core.moe.gate import BUILTIN_GATES

    for name, (factory, options) in BUILTIN_GATES.items():
        register(name, factory, options=options)
