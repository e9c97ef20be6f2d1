"""Symlinks in an expert folder: copying it into SAMMOE_HOME (``add-expert``) and exporting it as
a Hub repo folder (``export``, which ``publish`` uploads) take only regular files inside the
folder; a link out of it is refused, naming the link, before anything is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from sammoe_core.cli import main
from sammoe_core.experts.registry import Registry

SECRET = b"a file outside the expert folder that must never be copied"


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, list(args))
    assert (result.exit_code == 0) == ok, result.output
    if not ok:
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    return result


def _link_calibration_folder(expert: Path, outside: Path) -> Path:
    """Move the calibration set out of the expert folder (with a secret beside its cases) and link
    it back as ``calibration/``; returns the link."""
    shutil.move(expert / "calibration", outside / "calibration")
    (outside / "calibration" / "images" / "secret.nii.gz").write_bytes(SECRET)
    link = expert / "calibration"
    link.symlink_to(outside / "calibration", target_is_directory=True)
    return link


def _link_calibration_file(expert: Path, outside: Path) -> Path:
    """Link one calibration case, ``calibration/images/x.nii.gz``, to the secret; returns the link."""
    (outside / "secret.nii.gz").write_bytes(SECRET)
    link = expert / "calibration" / "images" / "x.nii.gz"
    link.symlink_to(outside / "secret.nii.gz")
    return link


LINKS = [_link_calibration_folder, _link_calibration_file]


@pytest.fixture
def outside(tmp_path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


def _secret_copies(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and SECRET in p.read_bytes()] if root.exists() else []


def _secret_survived(outside: Path) -> bool:
    return [p.read_bytes() for p in outside.rglob("secret.nii.gz")] == [SECRET]


@pytest.mark.parametrize("link_out", LINKS)
def test_add_expert_refuses_a_link_out_of_the_folder(
    link_out, sammoe_home, no_builtin_foundation, calibrated_expert, outside
):
    folder = calibrated_expert("alpha", 1)
    link = link_out(folder, outside)
    failed = run("add-expert", str(folder), ok=False).output
    assert failed.startswith("Error: expert 'alpha': calibration path ") and f"'{link}' resolves outside" in failed
    assert _secret_copies(sammoe_home) == []
    assert not (sammoe_home / "experts").exists() or not any((sammoe_home / "experts").iterdir())
    assert Registry().read().experts == {}
    assert _secret_survived(outside)


@pytest.mark.parametrize("link_out", LINKS)
def test_export_refuses_a_link_out_of_the_folder_and_writes_nothing(
    link_out, tmp_path, sammoe_home, plugin_host, calibrated_expert, outside
):
    folder = calibrated_expert("alpha", 1)
    link = link_out(folder, outside)
    exports = tmp_path / "exports"
    exports.mkdir()
    failed = run("export", str(folder), str(exports / "alpha"), ok=False).output
    assert failed.startswith("Error: expert 'alpha': calibration path ") and f"'{link}' resolves outside" in failed
    (exports / "empty").mkdir()
    assert f"'{link}' resolves outside" in run("export", str(folder), str(exports / "empty"), ok=False).output
    assert [p.name for p in exports.iterdir()] == ["empty"] and not any((exports / "empty").iterdir())
    assert _secret_copies(exports) == [] and _secret_copies(sammoe_home) == []
    assert _secret_survived(outside)


def test_an_added_expert_that_gained_a_link_is_not_exported(
    tmp_path, sammoe_home, no_builtin_foundation, calibrated_expert, outside
):
    run("add-expert", str(calibrated_expert("alpha", 1)))
    copy = sammoe_home / "experts" / "alpha"
    link = _link_calibration_file(copy, outside)
    failed = run("export", "alpha", str(tmp_path / "export"), ok=False).output
    assert f"'{link}' resolves outside" in failed
    assert not (tmp_path / "export").exists() and _secret_survived(outside)


def test_links_inside_the_folder_are_copied_as_the_files_they_point_to(
    tmp_path, sammoe_home, no_builtin_foundation, calibrated_expert
):
    folder = calibrated_expert("alpha", 1)
    shutil.move(folder / "calibration", folder / "data")
    (folder / "calibration").symlink_to("data", target_is_directory=True)
    (folder / "data" / "images" / "again.nii.gz").symlink_to("case0.nii.gz")
    (folder / "data" / "loop").symlink_to(".", target_is_directory=True)
    looping = run("add-expert", str(folder), ok=False).output
    assert f"'{folder / 'calibration' / 'loop'}' links back to a folder it is in" in looping
    (folder / "data" / "loop").unlink()

    added = json.loads(run("add-expert", str(folder)).output)
    assert added["experts"] == ["alpha"]
    copied = sammoe_home / "experts" / "alpha" / "calibration"
    assert not any(p.is_symlink() for p in [copied, *copied.rglob("*")])
    images = copied / "images"
    assert (images / "again.nii.gz").read_bytes() == (folder / "data" / "images" / "case0.nii.gz").read_bytes()
    assert sorted(p.name for p in images.iterdir()) == ["again.nii.gz", "case0.nii.gz", "case1.nii.gz"]
    assert not (sammoe_home / "experts" / "alpha" / "data").exists()
    run("export", "alpha", str(tmp_path / "export"))
    assert not any(p.is_symlink() for p in (tmp_path / "export").rglob("*"))


def test_a_linked_weights_file_or_manifest_is_refused(
    tmp_path, sammoe_home, no_builtin_foundation, make_expert, outside
):
    folder = make_expert("kidney").folder
    shutil.move(folder / "model.safetensors", outside / "model.safetensors")
    (folder / "model.safetensors").symlink_to(outside / "model.safetensors")
    failed = run("add-expert", str(folder), ok=False).output
    assert f"expert 'kidney': weights file '{folder / 'model.safetensors'}' resolves outside" in failed
    assert "resolves outside" in run("export", str(folder), str(tmp_path / "export"), ok=False).output
    assert not (tmp_path / "export").exists() and Registry().read().experts == {}


def test_a_relative_expert_folder_is_copied(make_expert, tmp_path, monkeypatch):
    """Before: a relative --expert path was joined twice (liver-expert/liver-expert/expert.json)."""
    from click.testing import CliRunner

    from sammoe_core.cli import main

    expert = make_expert("liver")
    monkeypatch.chdir(expert.folder.parent)
    made = CliRunner().invoke(
        main, ["new-plugin", "sammoe-expert-rel", "--expert", "liver", "-o", str(tmp_path / "out")]
    )
    assert made.exit_code == 0, made.output
    assert (tmp_path / "out" / "sammoe-expert-rel" / "sammoe_expert_rel" / "expert-data" / "expert.json").is_file()
