"""The viewer over the shipped default mixture of experts: the gate's choice per target, policy
changes without re-encoding, and a save that ``sammoe segment --prompts`` reproduces bit for bit.
Also the ``sammoe view`` command's checks before it serves."""

from __future__ import annotations

import shlex
import socket
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from viewer_support import CHANGE, page_labels, post, viewer_client

from sammoe_core.cli import main
from sammoe_core.segmentation.predictor_spec import PredictorSpec
from sammoe_core.segmentation.session import Session

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "data" / "phantom_ct.nii.gz"


def _segment_again(reproduce: str, out: Path) -> np.ndarray:
    """Run the command the viewer printed, writing to ``out`` instead; return its label map."""
    words = shlex.split(reproduce)
    assert words[:2] == ["sammoe", "segment"]
    args = words[2:]
    args[args.index("-o") + 1] = str(out)
    result = CliRunner().invoke(main, ["segment", *args, "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    return np.asanyarray(nib.load(out).dataobj)


@pytest.mark.slow
def test_gate_choice_policy_changes_and_saves_the_cli_reproduces(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMMOE_HOME", str(tmp_path / "home"))
    session = Session(str(EXAMPLE), PredictorSpec(device="cpu").build())
    shape = session.volume.shape
    client, _ = viewer_client(session, tmp_path / "ph_seg.nii.gz", input_argument=str(EXAMPLE))
    assert client.get("/api/info").json()["model"]["candidates"] == ["foundation", "esophagus", "hip", "spinal-cord"]
    post(client, "/api/targets", {"name": "liver"})
    post(client, "/api/targets", {"name": "spinal_cord"})
    first = post(client, "/api/targets/liver/clicks", {"position": [96, 129, 70]})
    assert first["last"]["encoder_passes"] >= 1
    post(client, "/api/targets/liver/clicks", {"position": [120, 129, 70], "positive": False})
    snap = post(client, "/api/targets/spinal_cord/clicks", {"position": [69, 31, 50]})
    routes = {t["name"]: t["route"] for t in snap["targets"]}
    assert routes["liver"]["chosen"] == {"foundation": 1.0}
    assert routes["spinal_cord"]["chosen"] == {"spinal-cord": 1.0}
    gate = routes["spinal_cord"]["gate"]
    assert set(gate) == {"foundation", "esophagus", "hip", "spinal-cord"} and abs(sum(gate.values()) - 1) < 1e-3
    assert max(gate, key=gate.get) == "spinal-cord"
    labels = page_labels(client, shape)
    assert labels[96, 129, 70] == 1 and labels[69, 31, 50] == 2

    saved = post(client, "/api/save")
    assert "--policy" not in saved["reproduce"]
    assert np.array_equal(_segment_again(saved["reproduce"], tmp_path / "cli.nii.gz"), labels)
    assert np.array_equal(np.asanyarray(nib.load(tmp_path / "ph_seg.nii.gz").dataobj), labels)

    passes = session.encoder_passes
    changed = client.put("/api/policy", json={"policy": "foundation"}, headers=CHANGE).json()
    assert changed["last"]["encoder_passes"] == 0 and session.encoder_passes == passes
    cord = next(t for t in changed["targets"] if t["name"] == "spinal_cord")
    assert cord["route"]["chosen"] == {"foundation": 1.0} and cord["route"]["gate"] == gate  # still shown
    forced = client.put("/api/policy", json={"policy": "threshold", "expert": "hip"}, headers=CHANGE).json()
    assert all(t["route"]["chosen"] == {"hip": 1.0} for t in forced["targets"])
    assert session.encoder_passes == passes
    for body, words in (({"policy": "nope"}, "unknown policy"), ({"policy": "fixed", "expert": "x"}, "no enabled")):
        refused = client.put("/api/policy", json=body, headers=CHANGE)
        assert refused.status_code == 400 and words in refused.json()["error"]
    assert client.get("/api/targets").json()["policy"]["expert"] == "hip"  # a refused change changes nothing

    saved = post(client, "/api/save")  # the viewer's own files: replaced
    assert "--expert hip" in saved["reproduce"]
    hip_labels = page_labels(client, shape)
    assert not np.array_equal(hip_labels, labels)
    assert np.array_equal(_segment_again(saved["reproduce"], tmp_path / "cli_hip.nii.gz"), hip_labels)


def test_view_refuses_bad_input_before_serving(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(main, ["view", str(tmp_path / "none.nii.gz"), "--port", "0", "--no-browser"])
    assert missing.exit_code == 2 and "no such file" in missing.output
    no_folder = runner.invoke(main, ["view", str(EXAMPLE), "--port", "0", "-o", str(tmp_path / "no" / "x.nii.gz")])
    assert no_folder.exit_code == 2 and "does not exist" in no_folder.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = runner.invoke(main, ["view", str(EXAMPLE), "--port", str(port), "--no-browser"])
    assert busy.exit_code == 2 and "cannot listen there" in busy.output and "--port" in busy.output
