"""``sammoe new-plugin``: a pip-installable plugin project around an expert folder.

The project has a pyproject (entry point in group ``sammoe``, dependency on this sammoe or
newer), a module whose ``register_experts`` hook registers the shipped folder (and imports no
torch), the manifest and weights as package data, a test written with ``sammoe_core.testing``
and a README. Its test passes as generated, once the project is installed.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

from .. import __version__
from ..errors import SammoeError
from .expert import Expert, copy_expert_folder
from .manage import check_expert

DATA_FOLDER = "expert-data"  # not an identifier: setuptools would warn that it is an unlisted package
PROJECT_NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = {name}
version = {version}
description = {description}
readme = "README.md"
license = {license}
authors = [{authors}]
requires-python = ">=3.10"
dependencies = [{sammoe}]

[project.optional-dependencies]
test = ["pytest>=8"]

[project.entry-points.sammoe]
{name} = {module}

[tool.setuptools]
packages = [{module}]

[tool.setuptools.package-data]
{module_key} = ["{data}/**/*"]
"""

MODULE = '''\
"""sammoe expert plugin {name}: {description}

Registers the expert in ``{data}/`` (manifest + weights, shipped as package data; a
folder name that is no Python identifier, so setuptools does not take it for a package). Keep this
module cheap to import: no torch here, sammoe imports every plugin when it starts.
"""

from pathlib import Path

from sammoe_core import hookimpl

EXPERT_DIR = Path(__file__).resolve().parent / "{data}"


@hookimpl
def register_experts(register):
    register(EXPERT_DIR)
'''

TEST = '''\
"""The installed package is a well-formed sammoe expert plugin (sammoe's testing kit checks it)."""

pytest_plugins = ["sammoe_core.testing"]


def test_package_is_a_well_formed_expert_plugin():
    from sammoe_core.testing import check_expert_package

    experts = check_expert_package({name!r})
    assert [e.name for e in experts] == [{expert!r}]


def test_sammoe_lists_the_expert_as_enabled(sammoe_home):
    from sammoe_core.experts import enabled_experts

    assert {expert!r} in enabled_experts()
'''

README = """\
# {name}

A sammoe expert plugin: **{expert}** {version}, {description}

| | |
|---|---|
| targets | {targets} |
| modality | {modality} |
| foundation | `{config}`, weights sha256 `{foundation_sha}` |
| overrides | {overrides} |
| licence | {license} |

## Install

```bash
sammoe add-expert {name}        # from an index, once published
sammoe add-expert path/to/{name}   # from this folder
sammoe experts list
```

## Test

```bash
pip install -e ".[test]" && python -m pytest -q
```

The weights are in `{module}/{data}/` (`expert.json` + `model.safetensors`); to ship new
weights, replace that folder and bump `version` in `pyproject.toml` and `expert.json`.
"""


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def render_plugin(project: Path, name: str, expert: Expert) -> None:
    """Write the project files for ``expert`` into the (new, empty) folder ``project``."""
    m = expert.manifest
    module = name.replace("-", "_")
    summary = " ".join(m.description.split())
    (project / module).mkdir(parents=True)
    (project / "tests").mkdir()
    (project / "pyproject.toml").write_text(
        PYPROJECT.format(
            name=_toml_str(name),
            version=_toml_str(m.version),
            description=_toml_str(summary),
            license=_toml_str(m.license),
            authors=", ".join(f"{{ name = {_toml_str(a)} }}" for a in m.authors),
            sammoe=_toml_str(f"sammoe>={__version__}"),
            module=_toml_str(module),
            module_key=module,
            data=DATA_FOLDER,
        ),
        encoding="utf-8",
    )
    (project / module / "__init__.py").write_text(
        MODULE.format(name=name, description=summary, data=DATA_FOLDER), encoding="utf-8"
    )
    (project / "tests" / f"test_{module}.py").write_text(TEST.format(name=name, expert=m.name), encoding="utf-8")
    (project / "README.md").write_text(
        README.format(
            name=name,
            module=module,
            expert=m.name,
            version=m.version,
            description=summary,
            targets=", ".join(t.name for t in m.targets),
            modality=m.modality,
            config=m.foundation.config,
            foundation_sha=m.foundation.sha256,
            overrides=", ".join(f"`{o}`" for o in m.overrides),
            license=m.license,
            data=DATA_FOLDER,
        ),
        encoding="utf-8",
    )
    copy_expert_folder(expert, project / module / DATA_FOLDER)


def new_plugin(name: str, expert_dir: str | Path, out_dir: str | Path = ".", overwrite: bool = False) -> Path:
    """Scaffold the plugin project ``OUT_DIR/NAME`` around the expert in ``expert_dir``; return it."""
    if not PROJECT_NAME.match(name):
        raise SammoeError(f"{name!r}: a plugin name is a lowercase project name such as sammoe-expert-liver")
    expert = Expert.from_folder(expert_dir)
    check_expert(expert)
    target = Path(out_dir) / name
    if target.exists() and not overwrite:
        raise SammoeError(f"{target}: exists (pass --overwrite to replace it)")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out_dir))
    try:
        render_plugin(staging / "project", name, expert)
        if target.exists():
            shutil.rmtree(target)
        (staging / "project").rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
