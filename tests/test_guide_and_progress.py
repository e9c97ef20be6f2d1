"""Issue 17.14 and 17.16: every progress bar knows its total (so it shows an ETA), and the plugin
author's guide walks through `sammoe finetune` with options that exist."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

from click.testing import CliRunner

from sammoe_core.cli import main

REPO = Path(__file__).resolve().parent.parent


def test_every_progress_bar_has_a_total():
    bars = []
    for path in (REPO / "sammoe_core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "tqdm":
                sized = any(k.arg == "total" for k in node.keywords) or (
                    node.args and isinstance(node.args[0], ast.Name)  # a list iterated: its length is the total
                )
                bars.append((f"{path.relative_to(REPO)}:{node.lineno}", sized))
    assert len(bars) >= 5  # segment, evaluate, gate cache, training, batch, phantoms
    assert [where for where, sized in bars if not sized] == []


def _guide_commands(verb: str) -> list[list[str]]:
    text = (REPO / "docs" / "plugins.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    commands = []
    for block in blocks:
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(f"sammoe {verb} "):
                commands.append(shlex.split(line)[2:])
    return commands


def test_the_guide_walks_through_finetune_with_real_options():
    text = (REPO / "docs" / "plugins.md").read_text()
    commands = _guide_commands("finetune")
    assert len(commands) >= 2  # the quick trial and the full-length run
    help_text = CliRunner().invoke(main, ["finetune", "--help"]).output
    for args in commands:
        for option in (a for a in args if a.startswith("--")):
            assert f"{option} " in help_text or f"{option}\n" in help_text, f"the guide uses {option}: not an option"
        assert {"--data", "--classes", "--calibration", "-o"} <= set(args)
    # the dataset layout, what --classes does, the calibration set, and measured time per step
    for needed in ("dataset.json", "images/", "labels/", "--classes", "calibration", "a step"):
        assert needed in text, needed
