"""Fixtures for the plugin and expert tests: a deterministic tiny foundation, expert folders made
on it, and throwaway plugin distributions installed into a temporary site folder.

Loaded for every test by ``tests/conftest.py``.
"""

from __future__ import annotations

import importlib
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from sammoe_core.plugins.builtins import embedded_foundation
from sammoe_core.testing import make_test_expert, make_test_foundation
from tests.data_support import write_sphere_dataset


@pytest.fixture(scope="session")
def test_foundation(tmp_path_factory: pytest.TempPathFactory):
    """A random sammoe-tiny foundation (seed 0) in a session folder, as a FoundationSpec."""
    return make_test_foundation(tmp_path_factory.mktemp("foundation") / "foundation.safetensors")


@pytest.fixture
def no_builtin_foundation(plugin_host):
    """The test's plugin host without the foundation shipped inside sammoe, so "no foundation
    chosen" means none at all and experts made on the test foundation are not refused."""
    plugin_host.unregister(embedded_foundation.__name__)
    return plugin_host


@pytest.fixture
def make_expert(tmp_path: Path, test_foundation):
    """``make_expert(name, **manifest_fields) -> Expert``: a new expert folder on the test foundation."""

    def make(name: str = "test-expert", parts: str = "decoder", seed: int = 1, **fields):
        return make_test_expert(tmp_path / "made" / name, test_foundation, name=name, parts=parts, seed=seed, **fields)

    return make


class FakeSite:
    """A folder on sys.path where tests install plugin distributions (module + .dist-info)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: list[str] = []

    def add(
        self, dist: str, source: str, version: str = "1.0", requires: tuple[str, ...] = (), ep_name: str | None = None
    ) -> str:
        """Install distribution ``dist`` whose module (``dist`` with '_') holds ``source``; returns the module name."""
        module = dist.replace("-", "_")
        (self.root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        info = self.root / f"{module}-{version}.dist-info"
        info.mkdir()
        metadata = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
        metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
        (info / "METADATA").write_text(metadata, encoding="utf-8")
        (info / "entry_points.txt").write_text(f"[sammoe]\n{ep_name or dist} = {module}\n", encoding="utf-8")
        self.modules.append(module)
        importlib.invalidate_caches()
        return module


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    site = FakeSite(root)
    yield site
    for module in site.modules:
        sys.modules.pop(module, None)
    importlib.invalidate_caches()


@pytest.fixture
def calibrated_expert(tmp_path, test_foundation):
    """``make(name, seed)``: a decoder-only expert on the test foundation shipping a sphere calibration set."""
    data = write_sphere_dataset(tmp_path / "calib-src", n=2)

    def make(name: str, seed: int):
        folder = tmp_path / "experts" / name
        make_test_expert(
            folder,
            test_foundation,
            name=name,
            seed=seed,
            targets=[{"name": "sphere"}],
            calibration={"path": "calibration", "classes": ["sphere"]},
        )
        shutil.copytree(data, folder / "calibration")
        return folder

    return make
