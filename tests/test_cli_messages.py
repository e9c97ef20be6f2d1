"""What commands print for people: `foundation list` has a header line, `new-plugin` says what it
made and what to run next (the project path alone stays on stdout, for scripts)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from sammoe_core.cli import main


def test_foundation_list_starts_with_a_header_line(sammoe_home, no_builtin_foundation, test_foundation):
    runner = CliRunner()
    assert runner.invoke(main, ["foundation", "set", str(test_foundation.weights)]).exit_code == 0
    listed = runner.invoke(main, ["foundation", "list"])
    assert listed.exit_code == 0, listed.output
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["NAME", "CONFIG", "SHA256", "WEIGHTS"]
    (chosen,) = json.loads(runner.invoke(main, ["foundation", "list", "--json"]).stdout)
    assert len(rows) == 1 and rows[0].split() == [
        "*",
        chosen["name"],
        test_foundation.config,
        test_foundation.sha256[:12],
        str(test_foundation.weights),
    ]
    # The columns line up under the header.
    assert rows[0].index(test_foundation.config) == header.index("CONFIG")
    assert rows[0].index(str(test_foundation.weights)) == header.index("WEIGHTS")


def test_foundation_list_without_foundations_prints_no_header(sammoe_home, no_builtin_foundation):
    listed = CliRunner().invoke(main, ["foundation", "list"])
    assert listed.exit_code == 0
    assert listed.stdout.startswith("no foundation") and "NAME" not in listed.stdout


def test_new_plugin_names_the_project_and_the_next_step(make_expert, tmp_path, monkeypatch):
    expert = make_expert("liver")
    made = CliRunner().invoke(
        main, ["new-plugin", "sammoe-expert-liver", "--expert", str(expert.folder), "-o", str(tmp_path)]
    )
    assert made.exit_code == 0, made.output
    project = tmp_path / "sammoe-expert-liver"
    assert made.stdout == f"{project}\n"  # the path alone: project=$(sammoe new-plugin ...) keeps working
    assert made.stderr == (
        f"created {project}: a plugin for expert liver; install it with: sammoe add-expert {project}\n"
    )

    # Relative to the working folder, the suggested command names a path pip will not take for a
    # requirement (a bare `sammoe-expert-liver` would be looked up on the package index).
    monkeypatch.chdir(tmp_path)
    again = CliRunner().invoke(
        main, ["new-plugin", "sammoe-expert-liver", "--expert", str(expert.folder), "--overwrite"]
    )
    assert again.exit_code == 0, again.output
    assert Path(again.stdout.strip()) == Path("sammoe-expert-liver")
    assert again.stderr.strip().endswith("install it with: sammoe add-expert ./sammoe-expert-liver")
