"""Every example in docs/api.md runs as written (in order, in one temporary folder and
SAMMOE_HOME), and every command's function is in the public API."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "api.md"

pytestmark = pytest.mark.slow


def _examples() -> list[tuple[str, str]]:
    text = DOC.read_text()
    found = []
    for match in re.finditer(r"^## (.+?)\n(.*?)(?=^## |\Z)", text, re.S | re.M):
        for block in re.findall(r"```python\n(.*?)```", match.group(2), re.S):
            found.append((match.group(1), block))
    return found


def test_every_command_has_its_documented_function():
    import sammoe_core

    names = [
        "segment",
        "segment_batch",
        "retrain_gate",
        "finetune",
        "add_expert",
        "remove_expert",
        "evaluate",
        "export",
        "publish",
        "convert",
    ]
    table = DOC.read_text()
    for name in names:
        assert callable(getattr(sammoe_core, name)), name
        assert f"`{name}(" in table, f"docs/api.md does not document {name}"


def test_the_documented_examples_run(tmp_path):
    examples = _examples()
    assert len(examples) >= 9
    shutil.copytree(REPO / "examples" / "data", tmp_path / "examples" / "data")
    env = {**os.environ, "SAMMOE_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    for title, code in examples:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, f"docs/api.md, section {title!r}:\n{done.stderr[-2000:]}"
