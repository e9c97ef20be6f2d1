"""README's two set-up commands stay true: CI runs the test command, both install every plugin."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _setup_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)


def _pip_installs(command: str) -> list[str]:
    words = shlex.split(command.replace("&&", " && "))
    return [" ".join(words[i:]).split(" && ")[0] for i, w in enumerate(words) if words[i : i + 2] == ["pip", "install"]]


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    commands = _setup_commands()
    assert len(commands) == 2, commands
    main_job, tests = commands
    assert "sammoe segment examples/data/" in main_job and "--preview" in main_job
    assert tests.endswith("python -m pytest -q")
    ci = (REPO / ".ci" / "run").read_text().split("# --- README: test command (keep in sync) ---", 1)[1]
    ci_installs = [
        " ".join(w for w in shlex.split(line) if w != "-q")
        for line in ci.splitlines()
        if line.startswith("pip install")
    ]
    assert ci_installs == _pip_installs(tests)
    assert "python -m pytest -q" in ci
    # the test command lints, checks formatting and types before the tests, as CI does
    for check in ("ruff check .", "ruff format --check .", "mypy sammoe_core"):
        assert check in tests and check in ci, check


def test_both_setup_commands_install_every_first_party_plugin():
    plugins = sorted(p.name for p in (REPO / "plugins").iterdir() if (p / "pyproject.toml").exists())
    assert plugins, "no first-party plugins"
    for command in _setup_commands():
        installed = " ".join(_pip_installs(command))
        for plugin in plugins:
            assert f"-e plugins/{plugin}" in installed, (plugin, command)
