"""Text from manifests is data: it never reaches generated code, and manifests bound it."""

from __future__ import annotations

import runpy
import sys

import pytest
from click.testing import CliRunner

from sammoe_core.cli import main
from sammoe_core.experts.manifest import ExpertManifest

PAYLOAD = '"""; __import__("pathlib").Path(__import__("os").environ["SAMMOE_PWNED"]).touch(); """'


def test_new_plugin_puts_no_manifest_text_into_code_and_the_payload_never_runs(make_expert, tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("SAMMOE_PWNED", str(marker))
    expert = make_expert("injected", description=f"Liver expert {PAYLOAD} and more", authors=[f"x {PAYLOAD}"])
    made = CliRunner().invoke(
        main, ["new-plugin", "sammoe-expert-injected", "--expert", str(expert.folder), "-o", str(tmp_path)]
    )
    assert made.exit_code == 0, made.output
    module = tmp_path / "sammoe-expert-injected" / "sammoe_expert_injected" / "__init__.py"
    code = module.read_text()
    assert "__import__" not in code and "Liver expert" not in code
    for generated in (module, tmp_path / "sammoe-expert-injected" / "tests" / "test_sammoe_expert_injected.py"):
        compile(generated.read_text(), str(generated), "exec")
    sys.modules.pop("sammoe_expert_injected", None)
    runpy.run_path(str(module))  # what importing the installed plugin runs
    assert not marker.exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("description", "x" * 2001, "at most 2000"),
        ("description", "ok\x1b[2Jclear", "control characters"),
        ("authors", ["a\x00b"], "control characters"),
        ("authors", ["y" * 201], "at most 200"),
    ],
)
def test_manifest_text_fields_are_bounded_and_printable(make_expert, field, value, message):
    expert = make_expert("bounded")
    data = expert.manifest.model_dump(mode="json")
    data[field] = value
    with pytest.raises(ValueError, match=message):
        ExpertManifest.model_validate(data)


def test_target_names_are_safe_file_stems(make_expert):
    data = make_expert("named").manifest.model_dump(mode="json")
    data["targets"] = [{"name": "../../etc/passwd"}]
    with pytest.raises(ValueError, match="targets"):
        ExpertManifest.model_validate(data)


def test_manifest_text_reaches_pyproject_and_readme_only_escaped(make_expert, tmp_path):
    import tomllib

    hostile = 'Liver " \\ [x](javascript:alert(1)) <img src=x onerror=alert(1)> *bold* `code`'
    expert = make_expert("escaped", description=hostile)
    made = CliRunner().invoke(
        main, ["new-plugin", "sammoe-expert-escaped", "--expert", str(expert.folder), "-o", str(tmp_path)]
    )
    assert made.exit_code == 0, made.output
    project = tmp_path / "sammoe-expert-escaped"
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert meta["description"] == hostile and meta["name"] == "sammoe-expert-escaped"  # a string, nothing more
    readme = (project / "README.md").read_text()
    assert "<img" not in readme and "](javascript" not in readme and "*bold*" not in readme
    assert "&lt;img src=x onerror=alert\\(1\\)&gt;" in readme and "\\*bold\\*" in readme
