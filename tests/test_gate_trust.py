"""Gate files are data: validated before anything is built, and a bad or missing gate is a warning
and a foundation fallback (an error under --strict), never a traceback and never another gate."""

from __future__ import annotations

import json
import shutil
import warnings

import pytest
import torch
from click.testing import CliRunner

from sammoe_core.cli import main
from sammoe_core.errors import SammoeError
from sammoe_core.moe.segmenter import StaleGateWarning, build_from_registry


def _add(folder):
    r = CliRunner().invoke(main, ["add-expert", str(folder)])
    assert r.exit_code == 0, r.output


@pytest.fixture
def trained(sammoe_home, plugin_host, test_foundation, calibrated_expert):
    """A foundation, one calibrated expert and a gate trained for it; returns the gate folder."""
    from sammoe_core.experts.foundations import choose_foundation
    from sammoe_core.moe.retrain import retrain_gate

    choose_foundation(str(test_foundation.weights))
    _add(calibrated_expert("alpha", 11))
    report = retrain_gate(epochs=3, device="cpu", prompts_per_class=1, progress=False, seed=3)
    return report.gate_dir


def _edit_manifest(folder, **changes):
    path = folder / "gate.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hparams": {"hidden": 128, "dropout": 0.1, "depth": 3}}, "option depth: Extra inputs are not permitted"),
        ({"hparams": {"hidden": 64}}, "gate weights do not fit its manifest"),
        ({"hparams": {"hidden": 10**9}}, "option hidden: Input should be less than or equal to 4096"),
        ({"candidates": "x"}, "invalid gate manifest: candidates"),
    ],
)
def test_a_bad_gate_manifest_is_a_warning_and_a_foundation_fallback(trained, changes, message):
    _edit_manifest(trained, **changes)
    with pytest.warns(StaleGateWarning, match="unusable") as caught:
        seg = build_from_registry("cpu")
    assert seg.gate is None and message in str(caught[0].message)
    with pytest.raises(SammoeError, match="unusable"):
        build_from_registry("cpu", strict=True)


def test_a_huge_hidden_size_allocates_nothing(trained, monkeypatch):
    """The bound applies before any module is built (before: a 1.5 TB allocation was attempted)."""
    built = []
    original = torch.nn.Linear.__init__

    def counting(self, *args, **kwargs):
        built.append(args)
        original(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Linear, "__init__", counting)
    _edit_manifest(trained, hparams={"hidden": 2**40})
    with pytest.warns(StaleGateWarning):
        build_from_registry("cpu")
    assert not any(2**40 in a for a in built)


def test_a_broken_recorded_gate_never_switches_to_the_shipped_one(trained, monkeypatch, tmp_path):
    from sammoe_core.moe import gate_choice

    shipped = tmp_path / "shipped"
    shutil.copytree(trained, shipped / "default")  # a shipped gate for exactly this set exists
    monkeypatch.setattr(gate_choice, "SHIPPED_GATES", shipped)
    (trained / "gate.json").write_text("garbage")
    with pytest.warns(StaleGateWarning, match="the current gate is unusable"):
        assert build_from_registry("cpu").gate is None
    shutil.rmtree(trained)
    with pytest.warns(StaleGateWarning, match="unusable"):
        assert build_from_registry("cpu").gate is None


def test_segment_with_a_bad_gate_warns_in_one_line_or_fails_under_strict(trained, tmp_path):
    image = next((tmp_path / "experts" / "alpha" / "calibration" / "images").glob("*.nii.gz"))
    _edit_manifest(trained, hparams={"hidden": 10**9})
    runner = CliRunner()
    out = tmp_path / "seg.nii.gz"
    r = runner.invoke(main, ["segment", str(image), "--point", "20,22,18", "-o", str(out), "--device", "cpu", "-q"])
    assert (
        r.exit_code == 0
        and "Warning: the current gate (trained) is unusable" in r.output
        and "Traceback" not in r.output
    )
    r = runner.invoke(
        main,
        [
            "segment",
            str(image),
            "--point",
            "20,22,18",
            "-o",
            str(tmp_path / "s2.nii.gz"),
            "--device",
            "cpu",
            "-q",
            "--strict",
        ],
    )
    assert r.exit_code == 2 and r.output.startswith("Error: ") and len(r.output.strip().splitlines()) == 1


def test_gate_training_is_bit_reproducible(trained):
    from safetensors.torch import load_file

    from sammoe_core.moe.retrain import retrain_gate

    first = load_file(str(trained / "gate.safetensors"))
    first_manifest = json.loads((trained / "gate.json").read_text())
    torch.manual_seed(987)  # another process history: the global random state differs
    torch.rand(5)
    again = retrain_gate(epochs=3, device="cpu", prompts_per_class=1, progress=False, seed=3)
    second = load_file(str(again.gate_dir / "gate.safetensors"))
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    assert (
        json.loads((again.gate_dir / "gate.json").read_text())["trained"]["heldout_accuracy"]
        == first_manifest["trained"]["heldout_accuracy"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", StaleGateWarning)
        assert build_from_registry("cpu").gate is not None


def test_a_damaged_expert_is_flagged_and_left_out_of_the_mixture(
    sammoe_home, plugin_host, test_foundation, calibrated_expert
):
    """Before: list/show/plugins said nothing, and every MoE segment exited 2 because of it."""
    from sammoe_core.experts.foundations import choose_foundation
    from sammoe_core.moe.retrain import retrain_gate
    from sammoe_core.moe.segmenter import ExpertSkippedWarning

    choose_foundation(str(test_foundation.weights))
    _add(calibrated_expert("alpha", 11))
    _add(calibrated_expert("beta", 12))
    retrain_gate(epochs=2, device="cpu", prompts_per_class=1, progress=False)
    weights = sammoe_home / "experts" / "alpha" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF  # one byte flipped
    weights.write_bytes(bytes(data))

    runner = CliRunner()
    listed = runner.invoke(main, ["experts", "list", "--json"])
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["alpha"]["weights_ok"] is False and "damaged" in rows["alpha"]["weights_problem"]
    assert rows["beta"]["weights_ok"] is True
    table = runner.invoke(main, ["experts", "list"])
    assert "DAMAGED" in table.stdout and "warning: expert 'alpha'" in table.stderr
    assert runner.invoke(main, ["experts", "show", "alpha"]).output.count('"weights_ok": false') == 1
    verified = runner.invoke(main, ["experts", "verify"])
    assert verified.exit_code == 2 and "alpha: FAILED" in verified.output and "beta: ok" in verified.output

    with pytest.warns(ExpertSkippedWarning, match="alpha.*damaged"):
        seg = build_from_registry("cpu")
    assert seg.candidates == ["foundation", "beta"] and seg.gate is not None  # routes among the rest
    assert seg.describe()["gate_excluded"] == ["alpha"]
    with pytest.raises(SammoeError, match="damaged"):
        build_from_registry("cpu", strict=True)
