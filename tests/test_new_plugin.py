"""``sammoe new-plugin`` output installs with pip (through ``sammoe add-expert``) and its own test
passes; the first-party plugin in plugins/ is found through its installed entry point."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sammoe_core.cli import main
from sammoe_core.experts import available_experts
from sammoe_core.experts.foundations import resolve_foundation
from sammoe_core.plugins.host import PluginHost
from sammoe_core.testing import check_expert_package

SCAFFOLD = "sammoe-expert-scaffold-check"


def sammoe(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    code = "import sys\nfrom sammoe_core.cli import main\nmain(sys.argv[1:])\n"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False)


@pytest.mark.slow
def test_a_new_plugin_installs_with_pip_and_its_own_test_passes(make_expert, tmp_path, sammoe_home):
    expert = make_expert("scaffolded")
    made = CliRunner().invoke(main, ["new-plugin", SCAFFOLD, "--expert", str(expert.folder), "-o", str(tmp_path)])
    assert made.exit_code == 0, made.output
    project = Path(made.stdout.strip())  # stderr adds a line naming the next step
    module = project / "sammoe_expert_scaffold_check"
    files = sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "pyproject.toml",
        "sammoe_expert_scaffold_check/__init__.py",
        "sammoe_expert_scaffold_check/expert-data/expert.json",
        "sammoe_expert_scaffold_check/expert-data/model.safetensors",
        "tests/test_sammoe_expert_scaffold_check.py",
    ]
    assert (module / "expert-data" / "model.safetensors").read_bytes() == expert.weights.path.read_bytes()
    assert "import torch" not in (module / "__init__.py").read_text()

    env = {**os.environ, "PIP_NO_BUILD_ISOLATION": "false", "SAMMOE_HOME": str(sammoe_home)}
    try:
        added = sammoe("add-expert", str(project), env=env)
        assert added.returncode == 0, added.stderr
        assert json.loads(added.stdout)["experts"] == ["scaffolded"]
        tested = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=project,
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert tested.returncode == 0, tested.stdout + tested.stderr
        assert "2 passed" in tested.stdout
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", SCAFFOLD], check=True, env=env)
    importlib.invalidate_caches()
    assert "scaffolded" not in available_experts(PluginHost(env={"SAMMOE_LOAD_PLUGINS": SCAFFOLD}).load())


def test_new_plugin_refuses_bad_names_broken_experts_and_existing_folders(make_expert, tmp_path):
    expert = make_expert("scaffolded")
    runner = CliRunner()

    def new_plugin(*args: str):
        return runner.invoke(main, ["new-plugin", *args, "--expert", str(expert.folder), "-o", str(tmp_path)])

    assert "a plugin name is a lowercase project name" in new_plugin("Sammoe Expert").output
    assert new_plugin(SCAFFOLD).exit_code == 0
    again = new_plugin(SCAFFOLD)
    assert again.exit_code == 2 and "exists (pass --overwrite to replace it)" in again.output
    assert new_plugin(SCAFFOLD, "--overwrite").exit_code == 0
    (expert.folder / "model.safetensors").write_bytes(b"broken")
    assert "sha256 mismatch" in new_plugin("sammoe-expert-other").output
    assert not (tmp_path / "sammoe-expert-other").exists()


def test_the_first_party_plugin_is_found_through_its_installed_entry_point(sammoe_home):
    experts = check_expert_package("sammoe-expert-spinal-cord")
    assert [e.name for e in experts] == ["spinal-cord"]
    host = PluginHost(env={"SAMMOE_LOAD_PLUGINS": "sammoe-expert-spinal-cord"}).load()
    expert = available_experts(host)["spinal-cord"]
    assert expert.source.kind == "plugin" and expert.source.distribution == "sammoe-expert-spinal-cord"
    # It was finetuned on the foundation sammoe ships (examples/train_default/build_default.sh).
    foundation = resolve_foundation()
    model = expert.build(foundation.load("cpu"), foundation.sha256)
    assert model.config.name == "sammoe-small-box" and not expert.overrides_encoder


def test_add_expert_reports_a_failed_pip_install_in_one_line(tmp_path, sammoe_home):
    env = {**os.environ, "SAMMOE_HOME": str(sammoe_home)}
    done = sammoe("add-expert", str(tmp_path / "missing-0.1-py3-none-any.whl"), env=env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("Error: pip install ")
    assert "failed (exit 1)" in done.stderr
