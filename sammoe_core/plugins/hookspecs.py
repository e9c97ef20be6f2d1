"""The plugin contract: the hooks a sammoe plugin may implement (entry-point group ``sammoe``).

Every ``register_*`` hook receives a ``register`` callback instead of returning values, so the
core validates what is registered, refuses duplicate names and records who registered what.
Implementations may accept any subset of a hook's arguments. Plugin modules must stay cheap to
import: no ``import torch`` at module top level (``sammoe --help`` loads every plugin).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pluggy import HookimplMarker, HookspecMarker

if TYPE_CHECKING:
    import click

PROJECT = "sammoe"

hookspec = HookspecMarker(PROJECT)
hookimpl = HookimplMarker(PROJECT)


@hookspec
def register_experts(register: Callable[..., Any]) -> None:
    """Register experts: call ``register(path_or_expert)`` once per expert.

    ``path_or_expert`` is a folder holding ``expert.json`` and its weights (usually package
    data beside the plugin module) or a ``sammoe_core.experts.Expert``. The manifest is read
    and validated at once; the weights are only opened when the expert is used.
    """


@hookspec
def register_foundations(register: Callable[..., Any]) -> None:
    """Register foundation networks: call ``register(spec)`` with a ``FoundationSpec``
    (name, network config name, weights path, the weights' sha256, optional Hub id)."""


@hookspec
def register_policies(register: Callable[..., Any]) -> None:
    """Register expert-selection policies: call ``register(name, factory)``; ``factory(**options)``
    (options: ``tau``, ``k``, ``expert``; ignore the rest) returns an object with ``name``,
    ``needs_gate`` and ``select(probs, candidates) -> sammoe_core.moe.policies.Selection``."""


@hookspec
def register_gates(register: Callable[..., Any]) -> None:
    """Register gate architectures: call ``register(name, factory, options=Model)``;
    ``factory(config, num_candidates, **hparams)`` returns an untrained ``torch.nn.Module`` mapping
    a ``sammoe_core.moe.gate.GateInput`` to (B, num_candidates) logits, and ``Model`` (a pydantic
    model; default: one made from the factory's keyword parameters) validates ``hparams``."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``sammoe`` command line: ``cli`` is a click group whose commands join
    sammoe's, so call ``cli.add_command(...)`` or decorate with ``@cli.command()``. A name that
    sammoe or an earlier plugin already uses is refused (and reported)."""
