"""The embedded default: shipped weights are intact, and the default MoE really segments."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from sammoe_core.cli import main
from sammoe_core.evaluation.metrics import dice
from sammoe_core.files.hashing import sha256_file
from sammoe_core.phantoms import LABEL_NAMES

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
WEIGHTS = REPO / "sammoe_core" / "weights"
EXAMPLE = REPO / "examples" / "data"
FIRST_PARTY = ("sammoe-expert-spinal-cord", "sammoe-expert-esophagus", "sammoe-expert-hip")


def test_shipped_foundation_and_gate_match_their_manifests():
    from sammoe_core.experts.foundations import resolve_foundation
    from sammoe_core.moe.gatefile import read_gate_manifest

    spec = json.loads((WEIGHTS / "foundation.json").read_text())
    assert sha256_file(WEIGHTS / spec["weights"]) == spec["sha256"]
    found = resolve_foundation()  # the built-in one, registered by the default plugin
    assert found.sha256 == spec["sha256"]
    model = found.load("cpu")  # strict, sha256-checked
    assert model.config.name == "sammoe-small-box"  # the built-in name is sammoe-small; its config takes boxes
    gate = read_gate_manifest(WEIGHTS / "gates" / "default")
    assert sha256_file(WEIGHTS / "gates" / "default" / "gate.safetensors") == gate.weights_sha256
    assert gate.foundation_sha256 == spec["sha256"]
    assert gate.candidate_names == ["foundation", "esophagus", "hip", "spinal-cord"]


@pytest.mark.parametrize("distribution", FIRST_PARTY)
def test_first_party_experts_are_well_formed_and_built_on_the_shipped_foundation(distribution):
    from sammoe_core.testing import check_expert_package

    spec = json.loads((WEIGHTS / "foundation.json").read_text())
    gate = json.loads((WEIGHTS / "gates" / "default" / "gate.json").read_text())
    (expert,) = check_expert_package(distribution)
    assert expert.manifest.foundation.sha256 == spec["sha256"]
    assert not expert.overrides_encoder  # decoder-only: shares the foundation's encoder pass
    assert {"name": expert.name, "weights_sha256": expert.manifest.weights.sha256} in gate["candidates"]
    assert expert.calibration_dir is not None and (expert.calibration_dir / "dataset.json").exists()


def test_the_default_moe_segments_the_example_volume(tmp_path, monkeypatch):
    """Floors are well under the held-out evaluation (README table): a regression, not noise, fails."""
    monkeypatch.setenv("SAMMOE_HOME", str(tmp_path / "home"))
    prompts = json.loads((EXAMPLE / "phantom_ct.prompts.json").read_text())
    keep = set(FLOORS) | set(ROUTES)
    prompts["targets"] = [t for t in prompts["targets"] if t["name"] in keep]
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    out = tmp_path / "seg.nii.gz"
    r = CliRunner().invoke(
        main,
        [
            "segment",
            str(EXAMPLE / "phantom_ct.nii.gz"),
            "--prompts",
            str(tmp_path / "prompts.json"),
            "-o",
            str(out),
            "--device",
            "cpu",
            "-q",
        ],
    )
    assert r.exit_code == 0, r.output
    seg = np.asanyarray(nib.load(out).dataobj)
    truth = np.asanyarray(nib.load(EXAMPLE / "phantom_ct_labels.nii.gz").dataobj)
    sidecar = json.loads(out.with_suffix("").with_suffix(".json").read_text())
    assert sidecar["model"]["predictor"] == "moe" and sidecar["model"]["gate_stale"] is False
    value = {name: v for v, name in LABEL_NAMES.items()}
    routes = {}
    for target in prompts["targets"]:
        result = next(t for t in sidecar["targets"] if t["name"] == target["name"])
        routes[target["name"]] = result["crops"][0]["predictor_info"][0]["chosen"]
        for point in target["points"]:  # a clicked voxel keeps the label of the structure clicked
            assert seg[tuple(point)] == target["label"], (target["name"], point)
        if target["name"] in FLOORS:
            got = dice(torch.from_numpy(seg == target["label"]), torch.from_numpy(truth == value[target["name"]]))
            assert got >= FLOORS[target["name"]], (target["name"], got)
    assert {name: routes[name] for name in ROUTES} == {name: {expert: 1.0} for name, expert in ROUTES.items()}


# Dice floors on this example (seed 9999, a held-out seed of the training style; one click each), set
# about a quarter below what the default measured when it was built (liver 0.591, spleen 0.710,
# kidney_left 0.720, spinal_cord 0.284, esophagus 0.139, hip_left 0.603). CPU runs are
# deterministic, so only a real regression (weights, preprocessing, routing, resampling) crosses
# a floor. The aorta (0.240) leaks and has no floor. All 8 targets go to their owner (expert or foundation).
FLOORS = {
    "liver": 0.44,
    "spleen": 0.53,
    "kidney_left": 0.54,
    "spinal_cord": 0.21,
    "esophagus": 0.10,
    "hip_left": 0.45,
}
ROUTES = {"liver": "foundation", "spinal_cord": "spinal-cord", "esophagus": "esophagus", "hip_left": "hip"}
