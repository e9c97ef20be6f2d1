"""The local registry and the commands over it: add-expert (folders), experts list/show/remove/
enable/disable, foundation list/set, the stale-gate flag, concurrent writers and crashes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from sammoe_core import hookimpl
from sammoe_core.cli import main
from sammoe_core.experts import enabled_experts
from sammoe_core.experts.foundations import NoFoundation, resolve_foundation
from sammoe_core.experts.registry import Registry
from sammoe_core.testing import make_test_foundation


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, list(args))
    assert (result.exit_code == 0) == ok, result.output
    return result


@pytest.fixture
def home(sammoe_home, no_builtin_foundation):
    """An empty SAMMOE_HOME and a plugin host without installed plugins or the built-in foundation."""
    return sammoe_home


def _write_gate_manifest(home, foundation_sha256: str, experts: dict[str, str]):
    """A gate folder whose manifest names this foundation and expert set (what staleness reads)."""
    from sammoe_core.moe.gatefile import GateCandidate, GateManifest

    folder = home / "gates" / "g"
    folder.mkdir(parents=True, exist_ok=True)
    manifest = GateManifest(
        network_config="sammoe-tiny",
        foundation_sha256=foundation_sha256,
        weights_sha256="0" * 64,
        candidates=[GateCandidate(name="foundation", weights_sha256=foundation_sha256)]
        + [GateCandidate(name=n, weights_sha256=s) for n, s in experts.items()],
    )
    (folder / "gate.json").write_text(manifest.model_dump_json())
    return folder


def test_add_expert_folder_copies_it_and_marks_the_gate_stale(home, make_expert):
    expert = make_expert("liver")
    added = json.loads(run("add-expert", str(expert.folder)).output)
    assert added == {"source": str(expert.folder), "kind": "folder", "experts": ["liver"], "problems": []}
    copy = home / "experts" / "liver"
    assert (copy / "expert.json").read_bytes() == (expert.folder / "expert.json").read_bytes()
    state = Registry().read()
    assert state.experts["liver"].path == "experts/liver"
    listed = json.loads(run("experts", "list", "--json").output)
    assert [(r["name"], r["enabled"], r["folder"]) for r in listed] == [("liver", True, str(copy))]
    table = run("experts", "list").output.splitlines()
    assert table[0].split() == ["NAME", "VERSION", "ENABLED", "WEIGHTS", "MODALITY", "TARGETS", "SOURCE"]
    assert table[1].split()[:6] == ["liver", "0.1.0", "yes", "ok", "ct", "structure"]


def test_adding_twice_needs_overwrite(home, make_expert):
    folder = str(make_expert("liver").folder)
    run("add-expert", folder)
    again = run("add-expert", folder, ok=False)
    assert again.exit_code == 2 and "Error: expert 'liver' is already added (folder)" in again.output
    run("add-expert", folder, "--overwrite")
    assert (home / "experts" / "liver" / "model.safetensors").is_file()


def test_add_expert_tells_folders_apart_from_projects(home, make_expert, tmp_path):
    (tmp_path / "empty").mkdir()
    assert (
        "neither an expert folder (expert.json) nor a Python project"
        in run("add-expert", str(tmp_path / "empty"), ok=False).output
    )
    assert "-U and -e apply to plugin packages" in run("add-expert", "-e", str(make_expert().folder), ok=False).output


def test_a_broken_expert_folder_is_refused_and_nothing_recorded(home, make_expert):
    folder = make_expert("liver").folder
    (folder / "model.safetensors").write_bytes(b"not weights")
    result = run("add-expert", str(folder), ok=False)
    assert result.exit_code == 2 and "sha256 mismatch" in result.output
    assert Registry().read().experts == {} and not (home / "experts" / "liver").exists()


def test_an_expert_for_another_foundation_than_the_chosen_one_is_refused(home, make_expert, tmp_path, test_foundation):
    other = make_test_foundation(tmp_path / "other.safetensors", seed=7)
    run("foundation", "set", str(other.weights))
    result = run("add-expert", str(make_expert("liver").folder), ok=False)
    assert test_foundation.sha256 in result.output and other.sha256 in result.output


def test_a_folder_expert_may_not_shadow_a_plugin_expert(home, make_expert, register_plugin):
    plugin_folder = make_expert("liver", seed=4).folder

    class Plugin:
        @hookimpl
        def register_experts(self, register):
            register(plugin_folder)

    register_plugin(Plugin(), "liver-plugin")
    result = run("add-expert", str(make_expert("liver").folder), ok=False)
    assert "already provided by plugin liver-plugin" in result.output


def test_disable_enable_and_the_stale_gate(home, make_expert, test_foundation):
    from sammoe_core.moe.gate_choice import current_gate_choice

    run("foundation", "set", str(test_foundation.weights))
    liver, spleen = make_expert("liver"), make_expert("spleen")
    run("add-expert", str(liver.folder))
    run("add-expert", str(spleen.folder))
    registry = Registry()
    shas = {"liver": liver.manifest.weights.sha256, "spleen": spleen.manifest.weights.sha256}
    registry.set_gate(
        _write_gate_manifest(home, test_foundation.sha256, shas), ["liver", "spleen"], test_foundation.sha256
    )
    assert registry.read().gate.path == "gates/g"  # stored relative to SAMMOE_HOME
    assert current_gate_choice().kind == "trained"
    assert "disabled liver; the gate is stale" in run("experts", "disable", "liver").output
    assert list(enabled_experts()) == ["spleen"] and current_gate_choice().kind == "stale"
    assert "(it was)" in run("experts", "disable", "liver").output
    # re-enabling restores exactly the set the gate was trained for: it is not stale
    assert "enabled liver; the trained gate serves this expert set" in run("experts", "enable", "liver").output
    assert list(enabled_experts()) == ["liver", "spleen"] and current_gate_choice().kind == "trained"
    assert "no expert named 'kidney'" in run("experts", "disable", "kidney", ok=False).output


def test_show_and_remove(home, make_expert, register_plugin):
    run("add-expert", str(make_expert("liver").folder))
    shown = json.loads(run("experts", "show", "liver").output)
    assert shown["manifest"]["foundation"]["config"] == "sammoe-tiny"
    assert shown["overrides_encoder"] is False
    assert shown["tensors"] and all(t.startswith(("prompt_encoder.", "mask_decoder.")) for t in shown["tensors"])
    run("experts", "remove", "liver")
    assert not (home / "experts" / "liver").exists() and Registry().read().experts == {}

    plugin_folder = make_expert("spleen").folder

    class Plugin:
        @hookimpl
        def register_experts(self, register):
            register(plugin_folder)

    register_plugin(Plugin(), "spleen-plugin")
    refused = run("experts", "remove", "spleen", ok=False).output
    assert "comes from plugin spleen-plugin" in refused and "sammoe experts disable spleen" in refused


def test_an_invalid_added_folder_is_reported_not_fatal(home, make_expert, plugin_host):
    run("add-expert", str(make_expert("liver").folder))
    run("add-expert", str(make_expert("spleen").folder))
    (home / "experts" / "liver" / "expert.json").write_text("{}")
    assert [r["name"] for r in json.loads(run("experts", "list", "--json").stdout)] == ["spleen"]
    assert any("liver" in p.message and "invalid expert manifest" in p.message for p in plugin_host.problems)


def test_foundation_set_list_and_no_foundation(home, test_foundation):
    with pytest.raises(NoFoundation, match="run `sammoe foundation set PATH`"):
        resolve_foundation()
    assert "no foundation" in run("foundation", "list").output
    assert run("foundation", "set", "no-such-name", ok=False).output.startswith(
        "Error: no foundation named 'no-such-name'"
    )
    chosen = json.loads(run("foundation", "set", str(test_foundation.weights)).output)
    assert chosen["sha256"] == test_foundation.sha256
    assert resolve_foundation().weights == test_foundation.weights
    rows = json.loads(run("foundation", "list", "--json").output)
    assert [(r["sha256"], r["in_use"]) for r in rows] == [(test_foundation.sha256, True)]


def test_listed_experts_say_whether_they_fit_the_foundation_in_use(home, make_expert, test_foundation, tmp_path):
    run("add-expert", str(make_expert("liver").folder))

    def fits():
        return [r["fits_foundation"] for r in json.loads(run("experts", "list", "--json").output)]

    assert fits() == [None]
    run("foundation", "set", str(test_foundation.weights))
    assert fits() == [True]
    run("foundation", "set", str(make_test_foundation(tmp_path / "other.safetensors", seed=9).weights))
    assert fits() == [False]


def start_together(script: str, args_per_process: list[list[str]], folder) -> list[int]:
    """Run ``script`` in one process per argument list, all released at the same moment once
    each has imported sammoe and torch; returns their exit codes."""
    go = folder / "go"
    prelude = (
        "import os, sys, time\nimport torch\nfrom sammoe_core.cli import main\n"
        "from sammoe_core.experts.registry import Registry\n"
        "open(os.environ['READY_FILE'], 'w').close()\n"
        f"while not os.path.exists({str(go)!r}):\n    time.sleep(0.002)\n"
    )
    procs, ready = [], []
    for i, args in enumerate(args_per_process):
        ready.append(folder / f"ready-{i}")
        env = {**os.environ, "SAMMOE_LOAD_PLUGINS": "", "READY_FILE": str(ready[-1])}
        procs.append(subprocess.Popen([sys.executable, "-c", prelude + script, *args], env=env))
    deadline = time.monotonic() + 120
    while not all(r.exists() for r in ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    return [p.wait(timeout=300) for p in procs]


@pytest.mark.slow
def test_concurrent_add_expert_processes_lose_nothing(home, make_expert, test_foundation, tmp_path):
    run("foundation", "set", str(test_foundation.weights))  # the processes see the built-in one otherwise
    names = [f"expert-{i}" for i in range(8)]
    folders = [str(make_expert(n).folder) for n in names]
    script = "for f in sys.argv[1:]:\n    main(['add-expert', f], standalone_mode=False)\n"
    assert start_together(script, [folders[0::2], folders[1::2]], tmp_path) == [0, 0]
    state = Registry().read()
    assert sorted(state.experts) == names
    assert sorted(p.name for p in (home / "experts").iterdir()) == names


def test_concurrent_registry_writers_lose_nothing(home, tmp_path):
    script = "for i in range(60):\n    Registry().set_enabled(f'{sys.argv[1]}-{i}', False, 'plugin')\n"
    assert start_together(script, [["a"], ["b"]], tmp_path) == [0, 0]
    assert len(Registry().read().disabled()) == 120


def test_a_crash_mid_write_leaves_the_previous_state_readable(home):
    registry = Registry()
    registry.set_enabled("kept", False, "plugin")
    before = registry.state_path.read_bytes()
    code = (
        "import os\nfrom sammoe_core.experts.registry import Registry\n"
        "os.replace = lambda *a, **k: os._exit(3)  # die after writing the new state, before it lands\n"
        "Registry().set_enabled('lost', False, 'plugin')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=dict(os.environ), check=False)
    assert done.returncode == 3
    assert registry.state_path.read_bytes() == before
    assert registry.read().disabled() == {"kept"}
    registry.set_enabled("after", False, "plugin")  # the dead process's lock is gone
    assert registry.read().disabled() == {"kept", "after"}


def test_an_unreadable_state_file_is_a_clear_error(home):
    home.mkdir()
    (home / "registry.json").write_text("{ half")
    result = run("experts", "list", ok=False)
    assert result.exit_code == 2 and "registry.json: unreadable sammoe state" in result.output
