"""Every hook is documented in docs/plugins.md (a heading with its exact arguments) and has a
test named ``test_hook_<name>`` (datasette's rule): adding a hook without both fails here."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from sammoe_core.plugins import hookspecs

ROOT = Path(__file__).resolve().parent.parent
HOOKS = sorted(name for name, fn in vars(hookspecs).items() if hasattr(fn, f"{hookspecs.PROJECT}_spec"))


def test_the_hooks_are_found():
    assert {
        "register_experts",
        "register_policies",
        "register_foundations",
        "register_gates",
        "register_commands",
    } <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented_with_its_arguments(hook):
    args = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
    headings = re.findall(r"^### (\w+\(.*\))$", (ROOT / "docs" / "plugins.md").read_text(), flags=re.MULTILINE)
    assert f"{hook}({args})" in headings


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook):
    sources = "".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    assert re.search(rf"^def test_hook_{hook}\(", sources, flags=re.MULTILINE), f"no test_hook_{hook} in tests/"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_docstring(hook):
    assert (getattr(hookspecs, hook).__doc__ or "").strip()
