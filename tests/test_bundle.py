"""``sammoe bundle``: the merged MoE as one checked folder, run with no expert plugin installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from sammoe_core.cli import main
from sammoe_core.deploy.bundle import build_from_bundle, open_bundle
from sammoe_core.errors import InputError, SammoeError, WeightsError
from sammoe_core.files.hashing import sha256_file

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "data"
EXPERTS = ["esophagus", "hip", "spinal-cord"]  # the first-party plugins, installed for the test suite
# one target the foundation keeps and one for each expert (the gate's routes on this example)
TARGETS = ("liver", "spinal_cord", "esophagus", "hip_left")


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, list(args))
    assert (result.exit_code == 0) == ok, result.output
    return result


@pytest.fixture(scope="module")
def written_bundle(tmp_path_factory) -> Path:
    """The default MoE (shipped foundation and gate, the three plugins) written by `sammoe bundle`."""
    root = tmp_path_factory.mktemp("bundle")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAMMOE_HOME", str(root / "home"))
        out = run("bundle", str(root / "moe")).output
    assert "experts esophagus, hip, spinal-cord" in out
    return root / "moe"


@pytest.fixture
def bundle_copy(written_bundle, tmp_path) -> Path:
    """A copy of the bundle the test may damage."""
    return Path(shutil.copytree(written_bundle, tmp_path / "copy"))


def rewrite_manifest(folder: Path, change) -> None:
    data = json.loads((folder / "bundle.json").read_text())
    change(data)
    (folder / "bundle.json").write_text(json.dumps(data))


def rehash(folder: Path, relative: str) -> None:
    """Record a file's new sha256 in bundle.json (a consistent but altered bundle)."""
    rewrite_manifest(folder, lambda d: d["files"].__setitem__(relative, sha256_file(folder / relative)))


def test_the_bundle_names_every_file_with_its_sha256(written_bundle):
    manifest = json.loads((written_bundle / "bundle.json").read_text())
    on_disk = sorted(p.relative_to(written_bundle).as_posix() for p in written_bundle.rglob("*") if p.is_file())
    assert sorted(manifest["files"]) == [p for p in on_disk if p != "bundle.json"]
    for relative, sha in manifest["files"].items():
        assert sha256_file(written_bundle / relative) == sha
    shipped = json.loads((REPO / "sammoe_core" / "weights" / "foundation.json").read_text())
    assert manifest["files"][manifest["foundation"]["file"]] == shipped["sha256"]
    assert [e["name"] for e in manifest["experts"]] == EXPERTS
    gate = json.loads((written_bundle / "gate" / "gate.json").read_text())
    assert [c["name"] for c in gate["candidates"]] == ["foundation", *EXPERTS]


def test_nothing_is_overwritten_without_overwrite(written_bundle, sammoe_home):
    before = (written_bundle / "bundle.json").read_text()
    assert "exists (pass --overwrite" in run("bundle", str(written_bundle), ok=False).output
    assert (written_bundle / "bundle.json").read_text() == before
    target = written_bundle.parent / "second"
    run("bundle", str(target))
    (target / "stale-file").write_text("left from before")
    run("bundle", str(target), "--overwrite")
    assert not (target / "stale-file").exists()  # replaced as a whole, atomically
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".second.")]  # no staging left
    mine = written_bundle.parent / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("not a bundle")
    assert "holds no bundle.json; not replaced" in run("bundle", str(mine), "--overwrite", ok=False).output
    assert (mine / "notes.txt").read_text() == "not a bundle"


def test_the_bundled_moe_runs_with_no_plugin_loaded_and_equals_the_plugin_moe(written_bundle, sammoe_home):
    from sammoe_core.experts import available_experts
    from sammoe_core.moe.segmenter import build_from_registry
    from sammoe_core.plugins.host import PluginHost, use_host

    installed = build_from_registry("cpu")  # the installed plugins, the shipped gate
    assert installed.candidates == ["foundation", *EXPERTS]
    with use_host(PluginHost(env={"SAMMOE_LOAD_PLUGINS": ""}).load()):
        assert available_experts() == {}  # no expert plugin is loaded
        bundled = build_from_bundle(written_bundle, "cpu")
    assert bundled.candidates == installed.candidates
    assert bundled.describe()["bundle"] == str(written_bundle)
    gen = torch.Generator().manual_seed(0)
    crop = torch.randn(1, 1, 128, 128, 128, generator=gen)
    points = torch.tensor([[[64.0, 60.0, 70.0]]])
    labels = torch.ones(1, 1, dtype=torch.long)
    a, b = installed.encode(crop), bundled.encode(crop)
    assert torch.equal(a.embedding, b.embedding)
    for name in installed.candidates:  # every candidate, forced: the same network bit for bit
        route = installed.route_for(a, points, labels)
        forced = type(route)({name: 1.0}, route.probabilities, route.policy)
        assert torch.equal(
            installed.decode(a, points, labels, route=forced).low_res_logits,
            bundled.decode(b, points, labels, route=forced).low_res_logits,
        )
    assert installed.route_for(a, points, labels) == bundled.route_for(b, points, labels)


@pytest.mark.slow
def test_segment_bundle_gives_the_plugin_run_masks_in_a_process_without_plugins(written_bundle, tmp_path):
    """The example volume: `segment` with the installed plugins, then `segment --bundle` in a fresh
    process where SAMMOE_LOAD_PLUGINS is empty (no plugin loads) and SAMMOE_HOME is empty."""
    prompts = json.loads((EXAMPLE / "phantom_ct.prompts.json").read_text())
    prompts["targets"] = [t for t in prompts["targets"] if t["name"] in TARGETS]
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    common = [str(EXAMPLE / "phantom_ct.nii.gz"), "--prompts", str(tmp_path / "prompts.json"), "--device", "cpu", "-q"]
    env = {**os.environ, "SAMMOE_HOME": str(tmp_path / "home-plugins"), "OMP_NUM_THREADS": "1"}
    env.pop("SAMMOE_LOAD_PLUGINS", None)
    cli = [sys.executable, "-m", "sammoe_core", "segment", *common]
    plugins = subprocess.run([*cli, "-o", str(tmp_path / "plugins.nii.gz")], env=env, capture_output=True, text=True)
    assert plugins.returncode == 0, plugins.stderr
    bare = {**env, "SAMMOE_HOME": str(tmp_path / "home-bare"), "SAMMOE_LOAD_PLUGINS": ""}
    bundled = subprocess.run(
        [*cli, "-o", str(tmp_path / "bundle.nii.gz"), "--bundle", str(written_bundle)],
        env=bare,
        capture_output=True,
        text=True,
    )
    assert bundled.returncode == 0, bundled.stderr
    a = np.asanyarray(nib.load(tmp_path / "plugins.nii.gz").dataobj)
    b = np.asanyarray(nib.load(tmp_path / "bundle.nii.gz").dataobj)
    assert set(np.unique(a)) == {0, *(t["label"] for t in prompts["targets"])}
    assert np.array_equal(a, b)
    routes = {}
    for name in ("plugins", "bundle"):
        sidecar = json.loads((tmp_path / f"{name}.json").read_text())
        routes[name] = {t["name"]: t["crops"][0]["predictor_info"][0]["chosen"] for t in sidecar["targets"]}
    assert routes["plugins"] == routes["bundle"]
    assert {"spinal-cord", "esophagus", "hip"} <= {e for chosen in routes["bundle"].values() for e in chosen}


def test_a_tampered_file_is_a_one_line_error(bundle_copy):
    delta = bundle_copy / "experts" / "hip" / "model.safetensors"
    data = bytearray(delta.read_bytes())
    data[-1] ^= 1
    delta.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"experts/hip/model.safetensors is damaged or tampered with"):
        open_bundle(bundle_copy)
    result = run(
        "segment",
        str(EXAMPLE / "phantom_ct.nii.gz"),
        "--point",
        "96,129,70",
        "-o",
        str(bundle_copy.parent / "seg.nii.gz"),
        "--bundle",
        str(bundle_copy),
        ok=False,
    )
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: ") and "experts/hip/model.safetensors is damaged or tampered with" in line
    assert not (bundle_copy.parent / "seg.nii.gz").exists()


def test_a_missing_or_an_added_file_is_an_error(bundle_copy):
    (bundle_copy / "gate" / "gate.safetensors").rename(bundle_copy / "gate.bak")
    with pytest.raises(WeightsError, match=r"file gate/gate.safetensors named in bundle.json is missing"):
        open_bundle(bundle_copy)
    (bundle_copy / "gate.bak").rename(bundle_copy / "gate" / "gate.safetensors")
    (bundle_copy / "experts" / "hip" / "extra.safetensors").write_bytes(b"x")
    with pytest.raises(WeightsError, match=r"file experts/hip/extra.safetensors is not named in bundle.json"):
        open_bundle(bundle_copy)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.__setitem__("surprise", 1), r"invalid bundle manifest: surprise: Extra inputs are not permitted"),
        (lambda d: d.pop("foundation"), r"invalid bundle manifest: foundation: Field required"),
        (
            lambda d: d["foundation"].__setitem__("file", "../outside.safetensors"),
            r"foundation.file: Value error, '../outside.safetensors' is not a relative path inside the bundle",
        ),
        (lambda d: d.__setitem__("gate", None), r"experts without a gate"),
    ],
    ids=["extra-key", "missing-key", "path-outside", "no-gate"],
)
def test_a_manifest_with_a_missing_or_extra_key_is_an_error(bundle_copy, change, message):
    rewrite_manifest(bundle_copy, change)
    with pytest.raises(InputError, match=message):
        open_bundle(bundle_copy)


def test_a_link_out_of_the_bundle_is_refused(bundle_copy, tmp_path):
    outside = tmp_path / "outside.safetensors"
    shutil.copy(bundle_copy / "foundation.safetensors", outside)
    (bundle_copy / "foundation.safetensors").unlink()
    (bundle_copy / "foundation.safetensors").symlink_to(outside)
    with pytest.raises(InputError, match=r"resolves outside"):
        open_bundle(bundle_copy)


def without_experts(folder: Path) -> None:
    """Make the bundle hold the foundation alone (experts and gate removed from folder and manifest)."""
    shutil.rmtree(folder / "experts")
    shutil.rmtree(folder / "gate")

    def change(data):
        data.update(experts=[], gate=None)
        data["files"] = {p: sha for p, sha in data["files"].items() if p == data["foundation"]["file"]}

    rewrite_manifest(folder, change)


def _resave(path: Path, change) -> None:
    """Rewrite a sammoe safetensors file with changed tensors but a valid content digest."""
    from sammoe_core.model.checkpoint import config_from_metadata, load_weights, save_weights

    state, meta = load_weights(path)
    change(state)
    extra = {
        k: v for k, v in meta.items() if k.startswith("sammoe_") and k not in ("sammoe_config", "sammoe_config_json")
    }
    save_weights(state, path, config_from_metadata(meta, str(path)), metadata=extra, overwrite=True)


@pytest.mark.parametrize(
    ("relative", "change", "message"),
    [
        (
            "foundation.safetensors",
            lambda s: s.__setitem__("image_encoder.extra", torch.zeros(1)),
            r"unexpected keys: image_encoder.extra",
        ),
        (
            "foundation.safetensors",
            lambda s: s.pop("mask_decoder.iou_token.weight"),
            r"missing keys: mask_decoder.iou_token.weight",
        ),
        (
            "experts/hip/model.safetensors",
            lambda s: s.__setitem__("image_encoder.pos_embed", torch.zeros(1, 8, 8, 8, 192)),
            r"not covered by the manifest's overrides: image_encoder.pos_embed",
        ),
    ],
    ids=["foundation-extra-tensor", "foundation-missing-tensor", "expert-undeclared-tensor"],
)
def test_weights_load_strictly_even_with_matching_hashes(bundle_copy, relative, change, message):
    if relative == "foundation.safetensors":  # a foundation alone: experts would refuse its new hash first
        without_experts(bundle_copy)
    _resave(bundle_copy / relative, change)
    rehash(bundle_copy, relative)
    if relative.startswith("experts/"):  # the expert's own manifest names its weights' sha256 too
        name = relative.split("/")[1]
        manifest = json.loads((bundle_copy / "experts" / name / "expert.json").read_text())
        manifest["weights"]["sha256"] = sha256_file(bundle_copy / relative)
        (bundle_copy / "experts" / name / "expert.json").write_text(json.dumps(manifest))
        rehash(bundle_copy, f"experts/{name}/expert.json")
        with pytest.raises(WeightsError, match="gate was trained for another foundation or expert set"):
            open_bundle(bundle_copy)  # the gate names the old delta: this expert set is not the gate's
        gate = json.loads((bundle_copy / "gate" / "gate.json").read_text())
        for candidate in gate["candidates"]:
            if candidate["name"] == name:
                candidate["weights_sha256"] = manifest["weights"]["sha256"]
        (bundle_copy / "gate" / "gate.json").write_text(json.dumps(gate))
        rehash(bundle_copy, "gate/gate.json")
    with pytest.raises(SammoeError, match=message):
        build_from_bundle(bundle_copy, "cpu")


def test_bundle_and_weights_exclude_each_other(written_bundle):
    from sammoe_core.segmentation.predictor_spec import PredictorSpec

    with pytest.raises(InputError, match="a bundle holds its own checked weights"):
        PredictorSpec(weights="w.safetensors", bundle=str(written_bundle), device="cpu").build()


def test_a_folder_that_is_no_bundle_says_so(tmp_path):
    with pytest.raises(InputError, match="no bundle manifest here"):
        open_bundle(tmp_path)
