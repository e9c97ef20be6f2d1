"""SAMMOE_HOME under stress: paths in the state stay inside it, kills leave nothing unrecoverable,
refused commands leave nothing behind, and an unusable home is a one-line error."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from sammoe_core.cli import main
from sammoe_core.experts.registry import ExpertRecord, Registry


def run(*args, ok=True):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert (result.exit_code == 0) == ok, result.output
    return result


@pytest.fixture
def home(sammoe_home, no_builtin_foundation):
    return sammoe_home


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.mark.parametrize("path", ["/VICTIM", "../victim", "experts/../../victim", "experts/other"])
def test_remove_deletes_only_the_folder_the_registry_made(home, tmp_path, path):
    """Before: `experts remove` deleted whatever folder the registry named."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    (home / "experts" / "other").mkdir(parents=True)
    (home / "experts" / "other" / "x").write_text("other")
    target = str(victim) if path == "/VICTIM" else path
    with Registry().update() as state:
        state.experts["evil"] = ExpertRecord(source="folder", path=target)
    result = run("experts", "remove", "evil", ok=False)
    assert result.exit_code == 2 and "refusing to touch it" in result.output
    assert (victim / "precious.txt").read_text() == "keep me" and (home / "experts" / "other" / "x").exists()
    assert "evil" in Registry().read().experts


def test_a_killed_add_is_repaired_by_doctor_and_readding_works(home, make_expert):
    """Before: a kill between the folder rename and the registry write left experts/NAME with no
    entry; re-adding said 'exists' and remove said 'no expert named'."""
    expert = make_expert("liver")
    run("add-expert", expert.folder)
    # what a kill at the worst moment leaves: the folder in place, the entry still pending
    with Registry().update() as state:
        state.experts["liver"].pending = True
    assert "liver" not in json.dumps(json.loads(run("experts", "list", "--json").output))
    blocked = run("add-expert", expert.folder, ok=False)
    assert "experts doctor --fix" in blocked.output
    report = run("experts", "doctor").output
    assert "pending" in report and "doctor --fix" in report
    assert "committed" in run("experts", "doctor", "--fix").output
    assert not Registry().read().experts["liver"].pending
    assert [r["name"] for r in json.loads(run("experts", "list", "--json").output)] == ["liver"]
    # a folder without any entry (an older kill) is replaced by the next add, no --overwrite needed
    with Registry().update() as state:
        del state.experts["liver"]
    run("add-expert", expert.folder)
    (home / "experts" / ".liver.abandoned").mkdir()
    import os

    os.utime(home / "experts" / ".liver.abandoned", (1_000_000_000, 1_000_000_000))
    (home / "experts" / "orphan").mkdir()
    fixed = run("experts", "doctor", "--fix").output
    assert "stale staging folder" in fixed and "experts/orphan has no registry entry" in fixed
    assert sorted(p.name for p in (home / "experts").iterdir()) == ["liver"]
    assert run("experts", "doctor").output.strip() == "nothing to repair"
    run("experts", "remove", "liver")
    assert not (home / "experts" / "liver").exists() and not list((home / "experts").iterdir())


def test_a_refused_add_expert_leaves_nothing_behind(home, make_expert):
    expert = make_expert("liver")
    run("add-expert", expert.folder)
    before = _files(home)
    refused = run("add-expert", make_expert("liver", seed=3).folder, ok=False)
    assert "already added" in refused.output and _files(home) == before


def test_a_failed_retrain_gate_leaves_no_folders(home, tmp_path, test_foundation, make_expert):
    run("foundation", "set", test_foundation.weights)
    run("add-expert", make_expert("liver").folder)
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "labels").mkdir()
    (empty / "dataset.json").write_text(
        json.dumps({"name": "e", "modality": "ct", "labels": {"background": 0, "x": 1}})
    )
    before = _files(home)
    for data in (empty, tmp_path / "missing"):
        result = run("retrain-gate", "--data", data, "--no-calibration", "-q", ok=False)
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert _files(home) == before


@pytest.mark.parametrize(
    "command", [["experts", "list"], ["add-expert", "EXPERT"], ["segment", "VOLUME", "-o", "OUT", "--point", "1,1,1"]]
)
def test_a_home_that_is_a_file_is_a_one_line_error(tmp_path, monkeypatch, make_expert, command):
    """Before: NotADirectoryError tracebacks."""
    import nibabel as nib
    import numpy as np

    home = tmp_path / "home-file"
    home.write_text("not a folder")
    monkeypatch.setenv("SAMMOE_HOME", str(home))
    volume = tmp_path / "v.nii.gz"
    nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)).to_filename(str(volume))
    substitutions = {"EXPERT": make_expert("liver").folder, "VOLUME": volume, "OUT": tmp_path / "o.nii.gz"}
    result = run(*[substitutions.get(a, a) for a in command], ok=False)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "is a file, not a folder" in lines[0], result.output
    assert home.read_text() == "not a folder"
