"""A testing kit for plugin authors: checks of an expert or a plugin package, pytest fixtures,
and a small deterministic foundation and expert to test tools against.

Use the fixtures with ``pytest_plugins = ["sammoe_core.testing"]`` in a test module or the root
``conftest.py``:

* ``sammoe_home``: a fresh, empty SAMMOE_HOME for the test (no user state leaks in or out);
* ``plugin_host``: a clean plugin host (sammoe's default plugins only) for the test;
* ``register_plugin``: ``register_plugin(obj, name=None)`` registers a plugin object until the
  test ends.

The checks raise with a message naming the problem: :func:`check_expert_folder`,
:func:`check_expert_package`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from sammoe_core.experts import Expert, available_experts
from sammoe_core.experts.manage import check_expert
from sammoe_core.plugins.hookspecs import PROJECT
from sammoe_core.plugins.host import PluginHost, get_host, use_host

if TYPE_CHECKING:
    import torch

    from sammoe_core.experts.foundations import FoundationSpec

HEAVY_MODULES = ("torch", "monai", "nibabel")


def check_expert_folder(folder: str | Path, foundation: FoundationSpec | None = None) -> Expert:
    """Check an expert folder: manifest, sammoe version, weights sha256 and content, header
    against manifest, tensor names and shapes, calibration layout; with ``foundation``, also
    that it was made on it and composes onto it. Returns the :class:`Expert`."""
    expert = Expert.from_folder(folder)
    check_expert(expert)
    if foundation is not None:
        expert.build(foundation.load(), foundation.sha256)
    return expert


def heavy_imports_of(distribution: str) -> list[str]:
    """The heavy modules (torch, monai, nibabel) that loading a distribution's ``sammoe`` entry
    points imports, measured in a fresh interpreter."""
    code = (
        "import importlib.metadata as m, sys\n"
        f"for ep in m.distribution({distribution!r}).entry_points.select(group={PROJECT!r}):\n"
        "    ep.load()\n"
        f"print(','.join(n for n in {HEAVY_MODULES!r} if n in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise AssertionError(f"{distribution}: importing its plugin failed:\n{done.stderr}")
    return [n for n in done.stdout.strip().split(",") if n]


def check_expert_package(distribution: str) -> list[Expert]:
    """Check an installed plugin package: it declares ``sammoe`` entry points, importing them
    imports no torch/monai/nibabel, they load and register experts with no error (strict
    mode), and every expert passes :func:`check_expert_folder`. Returns its experts."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        raise AssertionError(f"{distribution}: not installed (pip install -e . first)") from None
    if not list(dist.entry_points.select(group=PROJECT)):
        raise AssertionError(f"{distribution}: declares no entry point in group {PROJECT!r}")
    heavy = heavy_imports_of(distribution)
    if heavy:
        raise AssertionError(
            f"{distribution}: importing the plugin imports {', '.join(heavy)}; move those imports "
            "inside functions (every sammoe command imports every plugin)"
        )
    env = {**os.environ, "SAMMOE_LOAD_PLUGINS": distribution, "SAMMOE_STRICT_PLUGINS": "1"}
    env.pop("SAMMOE_DISABLED_PLUGINS", None)
    host = PluginHost(env=env).load()
    experts = [e for e in available_experts(host).values() if e.source.distribution == dist.name]
    if not experts:
        raise AssertionError(f"{distribution}: its plugin registers no expert")
    for expert in experts:
        check_expert_folder(expert.folder)
    return experts


# --- a deterministic foundation and expert for tests ---------------------------------------------


def random_state(config: str, seed: int) -> dict[str, torch.Tensor]:
    """A full state dict of the named config with seeded random values (same seed, same tensors)."""
    import torch

    from sammoe_core.model import get_config
    from sammoe_core.model.checkpoint import expected_shapes

    gen = torch.Generator().manual_seed(seed)
    shapes = expected_shapes(get_config(config))
    return {k: 0.05 * torch.randn(shapes[k], generator=gen) for k in sorted(shapes)}


def make_test_foundation(path: str | Path, config: str = "sammoe-tiny", seed: int = 0) -> FoundationSpec:
    """Write a random foundation file (identical bytes for the same config and seed)."""
    from sammoe_core.experts.foundations import FoundationSpec
    from sammoe_core.model import get_config
    from sammoe_core.model.checkpoint import save_weights

    save_weights(random_state(config, seed), path, get_config(config), overwrite=True)
    return FoundationSpec.from_file(path, name=f"test-{config}-{seed}")


def make_test_expert(
    folder: str | Path,
    foundation: FoundationSpec,
    name: str = "test-expert",
    parts: str = "decoder",
    seed: int = 1,
    **manifest_fields: Any,
) -> Expert:
    """Write an expert folder whose delta perturbs ``parts`` of ``foundation`` (seeded); the
    foundation's ``hub_id``, if it has one, goes into the manifest."""
    import torch

    from sammoe_core.experts import save_expert
    from sammoe_core.experts.weights import make_delta, part_prefixes
    from sammoe_core.model import get_config
    from sammoe_core.model.checkpoint import load_weights

    base, _ = load_weights(foundation.weights, expected_sha256=foundation.sha256)
    gen = torch.Generator().manual_seed(seed)
    prefixes = part_prefixes(parts)
    tuned = {
        k: v + 0.01 * torch.randn(v.shape, generator=gen) if k.startswith(prefixes) else v
        for k, v in sorted(base.items())
    }
    config = get_config(foundation.config)
    fields = {
        "name": name,
        "version": "0.1.0",
        "description": f"test expert {name} (random weights)",
        "targets": [{"name": "structure", "labels": [1]}],
        "modality": "ct",
        "license": "Apache-2.0",
        "authors": ["sammoe tests"],
        "min_sammoe_version": "0.1.0",
        "preprocessing": {"crop_size": config.image_size},
        **manifest_fields,
    }
    if foundation.hub_id:
        fields.setdefault("foundation", {"hub_id": foundation.hub_id})
    return save_expert(
        folder, make_delta(base, tuned, parts), config, foundation.sha256, parts, overwrite=True, **fields
    )


# --- pytest fixtures ---------------------------------------------------------------------------


@pytest.fixture
def sammoe_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SAMMOE_HOME for the test."""
    home = tmp_path / "sammoe-home"
    monkeypatch.setenv("SAMMOE_HOME", str(home))
    return home


@pytest.fixture
def plugin_host() -> Iterator[PluginHost]:
    """A clean plugin host (default plugins only, no installed ones) used by sammoe for the test."""
    with use_host(PluginHost(entry_points=False).load()) as host:
        yield host


@pytest.fixture
def register_plugin() -> Iterator[Callable[..., str]]:
    """``register_plugin(obj, name=None) -> name``: a plugin registered on sammoe's current plugin
    host until the test ends."""
    registered: list[tuple[PluginHost, str]] = []

    def register(plugin: object, name: str | None = None) -> str:
        host = get_host()
        registered.append((host, host.register(plugin, name)))
        return registered[-1][1]

    yield register
    for host, name in reversed(registered):
        host.unregister(name)
