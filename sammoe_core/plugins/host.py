"""Loading plugins without letting one broken plugin break sammoe.

A :class:`PluginHost` owns a pluggy manager. It registers the default plugins (core features
implemented through the same hooks), then the installed entry points of group ``sammoe``, sorted
by (distribution, entry-point name) so the order is the same on every machine. Each entry point
is loaded inside its own try/except and each hook implementation is called inside its own
try/except: a failure is recorded as a :class:`PluginProblem` (``sammoe plugins`` shows it) and
the other plugins keep working.

Environment switches:

* ``SAMMOE_LOAD_PLUGINS``: comma list of plugins (distribution or entry-point names) to load;
  set but empty loads no installed plugin. Unset: load all.
* ``SAMMOE_DISABLED_PLUGINS``: comma list of plugins never to load.
* ``SAMMOE_STRICT_PLUGINS=1``: every plugin failure is an error (a :class:`PluginError` chaining
  the original exception, whose traceback ``--debug`` shows; for plugin authors).

The process-wide host is built on first use (:func:`get_host`), never at import;
:func:`use_host` swaps in another one (tests get a clean host that way).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, TypeVar

import pluggy

from sammoe_core import __version__
from sammoe_core.errors import PluginError, SammoeError
from sammoe_core.plugins import hookspecs

DEFAULT_PLUGINS = (
    "sammoe_core.plugins.builtins.local_experts",
    "sammoe_core.plugins.builtins.embedded_foundation",
    "sammoe_core.plugins.builtins.builtin_moe",
)

T = TypeVar("T")


def normalize_name(name: str) -> str:
    """Distribution-style name normalisation (PEP 503): ``My_Plugin`` -> ``my-plugin``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _name_list(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {normalize_name(v.strip()) for v in value.split(",") if v.strip()}


@dataclass(frozen=True)
class PluginProblem:
    """Something that went wrong with one plugin: at ``stage`` 'load' or in the named hook."""

    plugin: str
    stage: str
    message: str

    def __str__(self) -> str:
        return f"{self.stage}: {self.message}"


@dataclass(frozen=True)
class PluginOrigin:
    distribution: str | None
    version: str | None
    default: bool
    installed_at: float | None = None  # when its distribution was installed (its metadata's mtime)


def _installed_at(dist: metadata.Distribution | None) -> float | None:
    """The install time of a distribution: the modification time of its metadata folder."""
    folder = getattr(dist, "_path", None)  # PathDistribution keeps its .dist-info folder here
    try:
        return os.stat(folder).st_mtime if folder is not None else None
    except OSError:
        return None


def sammoe_requirement_problem(dist: metadata.Distribution) -> str | None:
    """Why this installed distribution cannot run on this sammoe version (its Requires-Dist)."""
    from packaging.requirements import InvalidRequirement, Requirement

    for text in dist.requires or []:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if normalize_name(req.name) != "sammoe":
            continue
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        if not req.specifier.contains(__version__, prereleases=True):
            return f"requires sammoe{req.specifier} but this is sammoe {__version__}; upgrade sammoe"
    return None


class PluginHost:
    """A pluggy manager plus the record of which plugin came from where and what failed."""

    def __init__(self, env: Mapping[str, str] | None = None, entry_points: bool = True) -> None:
        self.env = dict(os.environ if env is None else env)
        self.strict = self.env.get("SAMMOE_STRICT_PLUGINS", "").strip() not in ("", "0")
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._use_entry_points = entry_points
        self._origins: dict[str, PluginOrigin] = {}
        self._problems: dict[PluginProblem, None] = {}
        self._loaded = False

    # --- loading -------------------------------------------------------------------------------

    def load(self) -> PluginHost:
        """Register the default plugins, then the installed ones (once)."""
        if self._loaded:
            return self
        self._loaded = True
        for module_name in DEFAULT_PLUGINS:
            self._origins[module_name] = PluginOrigin("sammoe", __version__, True)
            self.register(importlib.import_module(module_name), module_name, default=True)
        if self._use_entry_points:
            self._load_entry_points()
        return self

    def _wanted(self, *names: str) -> bool:
        names_n = {normalize_name(n) for n in names if n}
        allowed = _name_list(self.env.get("SAMMOE_LOAD_PLUGINS"))
        blocked = _name_list(self.env.get("SAMMOE_DISABLED_PLUGINS")) or set()
        if names_n & blocked:
            return False
        return allowed is None or bool(names_n & allowed)

    def _load_entry_points(self) -> None:
        def order(ep: metadata.EntryPoint) -> tuple[str, str]:
            return (normalize_name(ep.dist.name) if ep.dist else "", ep.name)

        for ep in sorted(metadata.entry_points(group=hookspecs.PROJECT), key=order):
            dist_name = ep.dist.name if ep.dist else None
            if not self._wanted(ep.name, dist_name or ""):
                continue
            if ep.name in self._origins:
                self.report(
                    ep.name, "load", f"entry point of {dist_name} has the name of an already loaded plugin; ignored"
                )
                continue
            self._origins[ep.name] = PluginOrigin(
                dist_name, ep.dist.version if ep.dist else None, False, _installed_at(ep.dist)
            )
            too_new = sammoe_requirement_problem(ep.dist) if ep.dist else None
            if too_new:
                self.report(ep.name, "load", too_new)
                continue
            try:
                self.register(ep.load(), ep.name)
            except (Exception, SystemExit) as e:
                if self.pm.get_plugin(ep.name) is not None:  # partly registered: roll back
                    self.pm.unregister(name=ep.name)
                if self.strict:  # for plugin authors: the failure itself, its traceback chained (--debug)
                    raise PluginError(f"plugin {ep.name}: load: {type(e).__name__}: {e}") from e
                self.report(ep.name, "load", f"{type(e).__name__}: {e}")

    def register(self, plugin: object, name: str | None = None, default: bool = False) -> str:
        """Register a plugin object (module or instance with ``@hookimpl`` methods); return its name."""
        registered = self.pm.register(plugin, name)
        if registered is None:
            raise SammoeError(f"plugin {name!r} is blocked or already registered")
        self._origins.setdefault(registered, PluginOrigin(None, None, default))
        unknown = sorted(c.name for c in self.pm.get_hookcallers(plugin) or [] if c.spec is None)
        for hook in unknown:
            self.report(registered, hook, "not a sammoe hook (written for another sammoe version?); never called")
        return registered

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self._origins.pop(name, None)
        self._problems = {p: None for p in self._problems if p.plugin != name}

    # --- failures ------------------------------------------------------------------------------

    def report(self, plugin: str, stage: str, message: str) -> None:
        """Record a problem with one plugin (strict mode: raise it)."""
        if self.strict:
            raise PluginError(f"plugin {plugin}: {stage}: {message}")
        self._problems[PluginProblem(plugin, stage, message)] = None

    @property
    def problems(self) -> list[PluginProblem]:
        return list(self._problems)

    # --- calling hooks -------------------------------------------------------------------------

    def implementations(self, hook: str) -> list[Any]:
        """The implementations of ``hook`` (pluggy HookImpl), in plugin load order."""
        order = {name: i for i, name in enumerate(self._origins)}
        impls = getattr(self.pm.hook, hook).get_hookimpls()
        return sorted(impls, key=lambda impl: order.get(impl.plugin_name, len(order)))

    def call_implementation(self, impl: Any, hook: str, kwargs: Mapping[str, Any]) -> None:
        """Call one implementation; an exception is reported against its plugin (strict: raised)."""
        try:
            impl.function(*(kwargs[arg] for arg in impl.argnames))
        except Exception as e:
            if self.strict:
                raise PluginError(f"plugin {impl.plugin_name}: {hook}: {type(e).__name__}: {e}") from e
            self.report(impl.plugin_name, hook, f"{type(e).__name__}: {e}")

    def collect(
        self, hook: str, accept: Callable[..., tuple[str, T]], rank: Callable[[str, str], Any] | None = None
    ) -> dict[str, T]:
        """Call a ``register_*`` hook and gather what plugins register, keyed by name.

        ``accept(plugin_name, *args, **kwargs)`` validates one ``register(...)`` call and returns
        ``(name, item)``; a :class:`SammoeError` from it is reported against the registering
        plugin and the item is left out. When several plugins register one name, the one with the
        lowest ``rank(name, plugin)`` keeps it (default: the first in load order) and the others
        are reported, each against itself.
        """
        order = {name: i for i, name in enumerate(self._origins)}
        registered: dict[str, list[tuple[str, T]]] = {}
        for impl in self.implementations(hook):
            plugin = impl.plugin_name

            def register(*args: Any, _plugin: str = plugin, **kwargs: Any) -> None:
                try:
                    name, item = accept(_plugin, *args, **kwargs)
                except SammoeError as e:
                    self.report(_plugin, hook, str(e))
                    return
                registered.setdefault(name, []).append((_plugin, item))

            self.call_implementation(impl, hook, {"register": register})
        found: dict[str, T] = {}
        for name, claims in registered.items():
            key = (
                (lambda c, name=name: (rank(name, c[0]), order.get(c[0], len(order))))
                if rank
                else (lambda c: order.get(c[0], len(order)))
            )
            winner, *others = sorted(claims, key=key)
            found[name] = winner[1]
            for plugin, _ in others:
                if plugin == winner[0]:
                    self.report(plugin, hook, f"{name!r} is registered twice by this plugin; the first is kept")
                else:
                    self.report(plugin, hook, f"{name!r} is already registered by {winner[0]}; ignored")
        return found

    # --- introspection -------------------------------------------------------------------------

    def origin(self, name: str) -> PluginOrigin:
        return self._origins.get(name, PluginOrigin(None, None, False))

    def plugins(self, include_defaults: bool = False) -> list[dict[str, Any]]:
        """One JSON-able dict per plugin: name, distribution, version, hooks, errors."""
        rows = []
        for name, origin in self._origins.items():
            if origin.default and not include_defaults:
                continue
            plugin = self.pm.get_plugin(name)
            hooks = sorted(c.name for c in self.pm.get_hookcallers(plugin) or []) if plugin else []
            rows.append(
                {
                    "name": name,
                    "distribution": origin.distribution,
                    "version": origin.version,
                    "default": origin.default,
                    "loaded": plugin is not None,
                    "hooks": hooks,
                    "errors": [str(p) for p in self._problems if p.plugin == name],
                }
            )
        return rows


_host: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, built and loaded on first use."""
    global _host
    if _host is None:
        _host = PluginHost().load()
    return _host


@contextlib.contextmanager
def use_host(host: PluginHost) -> Iterator[PluginHost]:
    """Make ``host`` the process-wide host inside the ``with`` block."""
    global _host
    previous, _host = _host, host
    try:
        yield host
    finally:
        _host = previous


def collect_commands(host: PluginHost, reserved: Iterable[str]) -> dict[str, Any]:
    """Commands from ``register_commands``, each plugin given its own click group; a name that
    is ``reserved`` (sammoe's own commands) or already added is refused and reported."""
    import click

    taken, commands = set(reserved), {}
    for impl in host.implementations("register_commands"):
        group = click.Group("sammoe")
        host.call_implementation(impl, "register_commands", {"cli": group})
        for name, command in group.commands.items():
            if name in taken:
                host.report(impl.plugin_name, "register_commands", f"command {name!r} already exists; ignored")
                continue
            taken.add(name)
            commands[name] = command
    return commands


def plugins_report(
    host: PluginHost, include_defaults: bool = False, reserved_commands: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """What ``sammoe plugins`` prints. Every hook is called once first, so registration problems
    (duplicates, invalid experts, hooks that raise) show next to load failures."""
    from sammoe_core.experts import available_experts
    from sammoe_core.experts.foundations import registered_foundations
    from sammoe_core.plugins.factories import gate_factories, policy_factories

    for expert in available_experts(host).values():
        problem = expert.integrity_problem()  # size + cached sha256: cheap
        if problem and expert.source.plugin:
            host.report(expert.source.plugin, "register_experts", problem)
    registered_foundations(host)
    policy_factories(host)
    gate_factories(host)
    collect_commands(host, reserved_commands)
    return host.plugins(include_defaults)
