"""The plugin host: discovery through installed entry points, failures that stay contained, the
load switches, and one test per hook (``test_hook_<name>``, required by test_plugin_docs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from sammoe_core import hookimpl
from sammoe_core.cli import main
from sammoe_core.errors import SammoeError
from sammoe_core.experts import available_experts
from sammoe_core.experts.foundations import registered_foundations, resolve_foundation
from sammoe_core.plugins.factories import gate_factories, policy_factories
from sammoe_core.plugins.host import DEFAULT_PLUGINS, PluginHost, plugins_report, use_host

FAKES = "good-plugin,broken-import,raising-hook,rival-duplicate,needs-newer,too-new-expert"


def registers(folder) -> str:
    return f"""
        from sammoe_core import hookimpl

        @hookimpl
        def register_experts(register):
            register({str(folder)!r})
    """


@pytest.fixture
def fakes(fake_site, make_expert):
    """Six installed plugins: one good, five each broken in its own way."""
    good = make_expert("good-expert")
    fake_site.add("good-plugin", registers(good.folder))
    fake_site.add("broken-import", "raise RuntimeError('boom at import')\n")
    fake_site.add(
        "raising-hook",
        """
        from sammoe_core import hookimpl

        @hookimpl
        def register_experts(register):
            raise ValueError("boom in the hook")
        """,
    )
    fake_site.add("rival-duplicate", registers(good.folder))
    fake_site.add("needs-newer", registers(good.folder), requires=("sammoe>=99",))
    fake_site.add("too-new-expert", registers(make_expert("future-expert", min_sammoe_version="99.0").folder))
    return fake_site


def host_of(*names: str, **env: str) -> PluginHost:
    return PluginHost(env={"SAMMOE_LOAD_PLUGINS": ",".join(names), **env}).load()


def errors_by_plugin(host: PluginHost) -> dict[str, list[str]]:
    return {row["name"]: row["errors"] for row in plugins_report(host)}


def test_broken_plugins_are_reported_and_the_rest_keeps_working(fakes, sammoe_home):
    host = host_of(*FAKES.split(","))
    experts = available_experts(host)
    assert list(experts) == ["good-expert"]
    assert experts["good-expert"].source.distribution == "good-plugin"
    errors = errors_by_plugin(host)
    assert errors["good-plugin"] == []
    assert "RuntimeError: boom at import" in errors["broken-import"][0]
    assert "ValueError: boom in the hook" in errors["raising-hook"][0]
    assert "'good-expert' is already registered by good-plugin" in errors["rival-duplicate"][0]
    assert "requires sammoe>=99" in errors["needs-newer"][0]
    assert "needs sammoe >= 99.0" in errors["too-new-expert"][0]


def test_sammoe_keeps_working_with_broken_plugins_installed(fakes, sammoe_home):
    with use_host(host_of(*FAKES.split(","))):
        listed = CliRunner().invoke(main, ["experts", "list", "--json"])
        report = CliRunner().invoke(main, ["plugins"])
    assert listed.exit_code == 0, listed.output
    assert [row["name"] for row in json.loads(listed.stdout)] == ["good-expert"]
    assert "plugin problem(s)" in listed.stderr
    rows = {row["name"]: row for row in json.loads(report.output)}
    assert set(rows) == set(FAKES.split(","))
    assert rows["good-plugin"]["hooks"] == ["register_experts"] and rows["good-plugin"]["version"] == "1.0"
    assert rows["broken-import"]["loaded"] is False and rows["broken-import"]["errors"]


def test_an_expert_name_is_first_come_first_served_by_install_time(fake_site, make_expert, sammoe_home):
    """Before: the plugin whose name sorted first took a taken name, and the original plugin was blamed."""
    import shutil

    from sammoe_core.experts.registry import ExpertRecord, Registry

    zeta = shutil.copytree(
        make_expert("same-name", seed=2, description="from zeta").folder, fake_site.root.parent / "zeta"
    )
    fake_site.add("zeta-plugin", registers(zeta))
    fake_site.add("alpha-plugin", registers(make_expert("same-name", seed=3, description="from alpha").folder))
    os.utime(fake_site.root / "zeta_plugin-1.0.dist-info", (1_000_000_000, 1_000_000_000))  # installed long ago
    host = host_of("zeta-plugin", "alpha-plugin")
    assert available_experts(host)["same-name"].manifest.description == "from zeta"
    errors = errors_by_plugin(host)
    assert errors["zeta-plugin"] == [] and "already registered by zeta-plugin" in errors["alpha-plugin"][0]
    # what the registry recorded at add-expert time wins over install times (an upgrade re-touches them)
    with Registry().update() as state:
        state.experts["same-name"] = ExpertRecord(source="plugin", plugin="alpha-plugin")
    host = host_of("zeta-plugin", "alpha-plugin")
    assert available_experts(host)["same-name"].manifest.description == "from alpha"
    assert "already registered by alpha-plugin" in errors_by_plugin(host)["zeta-plugin"][0]


def test_allow_list_block_list_and_empty_allow_list(fakes):
    assert [r["name"] for r in host_of("good-plugin").plugins()] == ["good-plugin"]
    assert host_of("").plugins() == []
    blocked = PluginHost(env={"SAMMOE_LOAD_PLUGINS": FAKES, "SAMMOE_DISABLED_PLUGINS": "broken-import,raising_hook"})
    assert {r["name"] for r in blocked.load().plugins()} == set(FAKES.split(",")) - {"broken-import", "raising-hook"}
    # default plugins load whatever the switches say
    assert len(host_of("").plugins(include_defaults=True)) == len(DEFAULT_PLUGINS)


def test_strict_mode_reraises_for_plugin_authors(fakes, sammoe_home):
    """Strict mode: the failure is an error (the original chained), not a report."""
    from sammoe_core.errors import PluginError

    with pytest.raises(PluginError, match="broken-import: load: RuntimeError: boom at import") as caught:
        host_of("broken-import", SAMMOE_STRICT_PLUGINS="1")
    assert isinstance(caught.value.__cause__, RuntimeError)
    with pytest.raises(PluginError, match="ValueError: boom in the hook"):
        available_experts(host_of("raising-hook", SAMMOE_STRICT_PLUGINS="1"))
    with pytest.raises(SammoeError, match="already registered"):
        available_experts(host_of("good-plugin", "rival-duplicate", SAMMOE_STRICT_PLUGINS="1"))


def test_bad_hook_signatures_and_unknown_hooks_are_reported(fake_site):
    fake_site.add(
        "wrong-args",
        """
        from sammoe_core import hookimpl

        @hookimpl
        def register_experts(register, colour):
            pass
        """,
    )
    fake_site.add(
        "future-hook",
        """
        from sammoe_core import hookimpl

        @hookimpl
        def register_widgets(register):
            pass
        """,
    )
    errors = errors_by_plugin(host_of("wrong-args", "future-hook"))
    assert "colour" in errors["wrong-args"][0]
    assert errors["future-hook"] == [
        "register_widgets: not a sammoe hook (written for another sammoe version?); never called"
    ]


def test_help_imports_no_torch_with_plugins_installed(fake_site):
    fake_site.add(
        "command-plugin",
        """
        import click
        from sammoe_core import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command(name="hello-plugin")
            def hello():
                "Say hello from a plugin."
                click.echo("hello")
        """,
    )
    fake_site.add("broken-import", "raise RuntimeError('boom at import')\n")
    code = (
        "import sys\nfrom sammoe_core.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('heavy:', [m for m in ('torch', 'monai', 'nibabel') if m in sys.modules])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(fake_site.root)}
    env.pop("SAMMOE_LOAD_PLUGINS", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert "hello-plugin" in done.stdout
    assert "heavy: []" in done.stdout


# --- one test per hook -------------------------------------------------------------------------


def test_hook_register_experts(plugin_host, register_plugin, make_expert, sammoe_home):
    folder = make_expert("hooked").folder

    class Plugin:
        @hookimpl
        def register_experts(self, register):
            register(folder)
            register(42)

    register_plugin(Plugin(), "hooked-plugin")
    assert available_experts()["hooked"].source.plugin == "hooked-plugin"
    assert any("expected an expert folder or Expert, got int" in p.message for p in plugin_host.problems)


def test_hook_register_policies(plugin_host, register_plugin):
    def top1(**options):
        return ("top1", options)

    class Plugin:
        @hookimpl
        def register_policies(self, register):
            register("top-1", top1)
            register("Bad Name", top1)
            register("not-callable", 3)

    register_plugin(Plugin(), "policy-plugin")
    assert policy_factories()["top-1"].factory is top1
    assert policy_factories()["top-1"].build() == ("top1", {})  # **options declares no option
    with pytest.raises(SammoeError, match="option tau: Extra inputs are not permitted"):
        policy_factories()["top-1"].build(options={"tau": 0.3})  # before: swallowed silently
    assert {"threshold", "top1", "topk-blend", "fixed", "foundation"} <= set(policy_factories())  # built-ins
    messages = " ".join(p.message for p in plugin_host.problems)
    assert "'Bad Name' is not a valid name" in messages and "not callable" in messages


def test_hook_register_gates(plugin_host, register_plugin):
    def linear_gate(**options):
        return ("gate", options)

    class Plugin:
        @hookimpl
        def register_gates(self, register):
            register("linear", linear_gate)

    class Rival:
        @hookimpl
        def register_gates(self, register):
            register("linear", print)

    register_plugin(Plugin(), "gate-plugin")
    register_plugin(Rival(), "rival-plugin")
    assert gate_factories()["linear"].factory is linear_gate
    assert "mlp" in gate_factories()  # the built-in gate
    assert [p.plugin for p in plugin_host.problems] == ["rival-plugin"]


def test_hook_register_foundations(no_builtin_foundation, register_plugin, test_foundation, sammoe_home):
    class Plugin:
        @hookimpl
        def register_foundations(self, register):
            register(test_foundation.model_copy(update={"name": "sammoe-small"}))

    assert registered_foundations() == {}
    register_plugin(Plugin(), "foundation-plugin")
    assert list(registered_foundations()) == ["sammoe-small"]
    assert resolve_foundation().sha256 == test_foundation.sha256  # the built-in name is the default


def test_hook_register_commands(plugin_host, register_plugin):
    class Plugin:
        @hookimpl
        def register_commands(self, cli):
            @cli.command(name="greet")
            @click.argument("who")
            def greet(who):
                click.echo(f"hello {who}")

            @cli.command(name="convert")
            def hijack():
                click.echo("hijacked")

    register_plugin(Plugin(), "command-plugin")
    runner = CliRunner()
    assert runner.invoke(main, ["greet", "you"]).output == "hello you\n"
    assert "hijacked" not in runner.invoke(main, ["convert", "--help"]).output
    assert "greet" in runner.invoke(main, ["--help"]).output
    assert any("command 'convert' already exists" in p.message for p in plugin_host.problems)


def test_add_expert_fails_when_the_new_plugins_expert_does_not_register(
    fake_site, make_expert, sammoe_home, monkeypatch
):
    """Before: the newcomer won by name order, the original plugin was blamed, and add-expert
    exited 0 with ``"experts": []``."""
    import shutil

    from sammoe_core.experts import manage

    first = shutil.copytree(make_expert("liver", seed=2).folder, fake_site.root.parent / "first")
    fake_site.add("first-plugin", registers(first))
    os.utime(fake_site.root / "first_plugin-1.0.dist-info", (1_000_000_000, 1_000_000_000))
    monkeypatch.setattr(
        manage, "run_pip", lambda args: fake_site.add("another-plugin", registers(make_expert("liver", seed=5).folder))
    )
    monkeypatch.setenv("SAMMOE_LOAD_PLUGINS", "first-plugin,another-plugin")
    r = CliRunner().invoke(main, ["add-expert", "another-plugin"])
    assert r.exit_code == 2, r.output
    assert "another-plugin: installed, but its experts did not register" in r.output
    assert "'liver' is already registered by first-plugin" in r.output
    assert available_experts(host_of("first-plugin", "another-plugin"))["liver"].source.distribution == "first-plugin"
