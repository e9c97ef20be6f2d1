"""The mixture of experts: gate learning, cache reuse, encoder sharing, exact MoE output, stale gates."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from sammoe_core.cli import main
from sammoe_core.errors import SammoeError
from sammoe_core.model import Sam3D
from sammoe_core.moe.gate import MlpGate
from sammoe_core.moe.gate_training import fit_gate
from sammoe_core.moe.policies import FixedPolicy, ThresholdPolicy
from sammoe_core.moe.segmenter import MoESegmenter, StaleGateWarning, build_from_registry
from tests.data_support import write_sphere_dataset


def _blob_crop(kind: str, rng: np.random.Generator) -> torch.Tensor:
    grid = np.stack(np.meshgrid(*[np.arange(64)] * 3, indexing="ij"), -1)
    if kind == "blob":  # a bright sphere around the crop centre (where the click is)
        r = rng.uniform(8, 14)
        img = 3.0 * (((grid - 32 + rng.uniform(-3, 3, 3)) ** 2).sum(-1) < r * r) + rng.normal(0, 0.3, (64,) * 3)
    else:  # thin bright stripes: another kind of structure
        axis = int(rng.integers(3))
        img = 3.0 * ((grid[..., axis] % 8) < 2) + rng.normal(0, 0.3, (64,) * 3)
    return torch.from_numpy(img.astype(np.float32))[None, None]


def test_gate_learns_to_route_by_structure(fresh_seed, test_foundation):
    """Expert better on blobs, foundation better on stripes: the gate routes held-out crops."""
    model = test_foundation.load()
    rng = np.random.default_rng(fresh_seed)
    records = []
    for i in range(80):
        kind = "blob" if i % 2 else "stripes"
        crop = _blob_crop(kind, rng)
        click = torch.tensor([32.0, 32.0, 32.0])
        with torch.no_grad():
            emb = model.encode(crop)
            sparse, _ = model.embed_prompts(click[None, None], torch.ones(1, 1, dtype=torch.long))
        dice = {"foundation": 0.3, "expert-a": 0.8} if kind == "blob" else {"foundation": 0.7, "expert-a": 0.2}
        records.append(
            {"group": f"case{i}", "features": {"embedding": emb[0], "sparse": sparse[0], "click": click}, "dice": dice}
        )
    torch.manual_seed(fresh_seed % 10_000)
    fit = fit_gate(records, ["foundation", "expert-a"], MlpGate(model.config, 2), 64, epochs=60, seed=fresh_seed % 1000)
    assert fit.heldout_size >= 12
    assert fit.heldout_accuracy >= 0.85, fit  # chance is 0.5
    assert fit.label_counts == {"foundation": 40, "expert-a": 40}


def test_near_ties_go_to_the_foundation():
    from sammoe_core.moe.gate_training import best_candidate

    order = ["foundation", "a", "b"]
    assert best_candidate({"foundation": 0.70, "a": 0.71, "b": 0.2}, order, margin=0.02) == 0
    assert best_candidate({"foundation": 0.70, "a": 0.75, "b": 0.2}, order, margin=0.02) == 1
    assert best_candidate({"foundation": 0.70, "a": 0.70, "b": 0.9}, order, margin=0.02) == 2


def _add(folder):
    r = CliRunner().invoke(main, ["add-expert", str(folder)])
    assert r.exit_code == 0, r.output


def test_retrain_reuses_the_cache_and_detects_stale_gates(sammoe_home, plugin_host, test_foundation, calibrated_expert):
    from sammoe_core.experts.foundations import choose_foundation
    from sammoe_core.moe.retrain import retrain_gate

    choose_foundation(str(test_foundation.weights))
    _add(calibrated_expert("alpha", 11))
    _add(calibrated_expert("beta", 12))
    first = retrain_gate(epochs=5, device="cpu", prompts_per_class=2, progress=False)
    n = first.prompts
    assert n >= 4
    # the calibration sets are identical copies: each prompt is computed once (content keys match)
    assert first.cache.encoder_passes == n
    assert first.cache.candidate_passes == {"foundation": n, "alpha": n, "beta": n}
    seg = build_from_registry("cpu")
    assert seg.gate is not None and seg.candidates == ["foundation", "alpha", "beta"]

    _add(calibrated_expert("gamma", 13))
    with pytest.warns(StaleGateWarning, match="retrain-gate"):
        stale = build_from_registry("cpu")
    assert stale.gate is None
    with pytest.raises(SammoeError, match="retrain-gate"):
        build_from_registry("cpu", strict=True)
    second = retrain_gate(epochs=5, device="cpu", prompts_per_class=2, progress=False)
    assert second.prompts >= n
    assert second.cache.encoder_passes == 0, "cached embeddings are reused"
    assert second.cache.candidate_passes == {"gamma": n}, second.cache.candidate_passes
    with warnings.catch_warnings():
        warnings.simplefilter("error", StaleGateWarning)
        assert build_from_registry("cpu").candidates == ["foundation", "alpha", "beta", "gamma"]

    r = CliRunner().invoke(main, ["experts", "remove", "beta"])
    assert r.exit_code == 0, r.output
    with pytest.warns(StaleGateWarning):
        assert build_from_registry("cpu").gate is None


class _CountingEncoder:
    def __init__(self, monkeypatch):
        self.calls = 0
        original = Sam3D.encode

        def counted(model, image):
            self.calls += 1
            return original(model, image)

        monkeypatch.setattr(Sam3D, "encode", counted)


def test_decoder_only_experts_share_the_encoder_pass(monkeypatch, tmp_path, test_foundation, make_expert):
    foundation = test_foundation.load()
    experts = {"dec": make_expert("dec", parts="decoder", seed=3), "enc": make_expert("enc", parts="all", seed=4)}
    counter = _CountingEncoder(monkeypatch)
    crop = torch.randn(1, 1, 64, 64, 64)
    pts, lab = torch.tensor([[[32.0, 30.0, 33.0]]]), torch.tensor([[1]])
    moe = MoESegmenter(foundation, experts, policy=FixedPolicy("dec"), foundation_sha256=test_foundation.sha256)
    state = moe.encode(crop)
    moe.decode(state, pts, lab)
    moe.decode(state, pts, lab, mask_prompt=torch.zeros(1, 1, 16, 16, 16))
    assert counter.calls == 1, "a decoder-only expert reuses the foundation's embedding"
    moe.policy = FixedPolicy("enc")
    moe.decode(state, pts, lab)
    moe.decode(state, pts, lab)
    assert counter.calls == 2, "an expert with its own encoder runs it once per crop, when chosen"


class _HandGate(torch.nn.Module):
    """A gate whose output is set by hand."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.tensor([logits], dtype=torch.float32)

    def forward(self, inp):
        return self.logits.expand(inp.embedding.shape[0], -1)


def test_moe_output_is_exactly_the_chosen_experts(test_foundation, make_expert):
    foundation = test_foundation.load()
    experts = {"a": make_expert("a", seed=5), "b": make_expert("b", seed=6)}
    crop = torch.randn(1, 1, 64, 64, 64)
    pts, lab = torch.tensor([[[20.0, 40.0, 33.0]]]), torch.tensor([[1]])
    gate = _HandGate([0.0, 0.0, 4.0])  # b: p = 0.96
    moe = MoESegmenter(foundation, experts, gate, ThresholdPolicy(tau=0.5), foundation_sha256=test_foundation.sha256)
    pred = moe.decode(moe.encode(crop), pts, lab)
    b = experts["b"].build(foundation, test_foundation.sha256)
    with torch.no_grad():
        expected = b.decode(b.encode(crop), pts, lab)
    assert torch.equal(pred.low_res_logits, expected)
    assert pred.info["chosen"] == {"b": 1.0} and pred.info["gate"]["b"] > 0.9
    moe.policy = ThresholdPolicy(tau=0.99)  # not confident enough: the foundation
    pred = moe.decode(moe.encode(crop), pts, lab)
    with torch.no_grad():
        assert torch.equal(pred.low_res_logits, foundation.decode(foundation.encode(crop), pts, lab))
    assert pred.info["chosen"] == {"foundation": 1.0}


def test_cli_retrain_then_segment_reports_routing(
    tmp_path, sammoe_home, plugin_host, test_foundation, calibrated_expert
):
    import nibabel as nib

    from sammoe_core.experts.foundations import choose_foundation

    choose_foundation(str(test_foundation.weights))
    _add(calibrated_expert("alpha", 21))
    runner = CliRunner()
    r = runner.invoke(
        main,
        ["retrain-gate", "--epochs", "5", "--device", "cpu", "--prompts-per-class", "2", "--batch-size", "4", "-q"],
    )
    assert r.exit_code == 0, r.output
    assert "routing accuracy" in r.output and "alpha" in r.output
    image = next((tmp_path / "experts" / "alpha" / "calibration" / "images").glob("*.nii.gz"))
    out = tmp_path / "seg.nii.gz"
    r = runner.invoke(main, ["segment", str(image), "--point", "20,22,18", "-o", str(out), "--device", "cpu", "-q"])
    assert r.exit_code == 0, r.output
    sidecar = json.loads(out.with_suffix("").with_suffix(".json").read_text())
    routing = sidecar["targets"][0]["crops"][0]["predictor_info"][0]
    assert set(routing["gate"]) == {"foundation", "alpha"}
    assert abs(sum(routing["gate"].values()) - 1) < 1e-3
    assert sidecar["model"]["predictor"] == "moe"
    assert nib.load(out).shape == nib.load(image).shape


def test_evaluate_reports_every_method_per_structure(
    tmp_path, sammoe_home, plugin_host, test_foundation, calibrated_expert
):
    from sammoe_core.experts.foundations import choose_foundation

    choose_foundation(str(test_foundation.weights))
    _add(calibrated_expert("alpha", 31))
    data = write_sphere_dataset(tmp_path / "eval", n=2, seed=5)
    out = tmp_path / "report"
    r = CliRunner().invoke(
        main, ["evaluate", "--data", str(data), "--clicks", "1,3", "-o", str(out), "--device", "cpu", "-q"]
    )
    assert r.exit_code == 0, r.output
    report = json.loads((out / "evaluation.json").read_text())
    assert report["methods"] == ["foundation", "alpha", "moe"]
    assert set(report["dice"]) == {"sphere", "box"}
    for cls in ("sphere", "box"):
        for method in report["methods"]:
            for k in ("1", "3"):
                assert 0.0 <= report["dice"][cls][method][k] <= 1.0
    assert report["cases_per_class"] == {"sphere": 2, "box": 2}
    assert {cls: sum(r.values()) for cls, r in report["moe_routing"].items()} == {
        "sphere": 2,
        "box": 2,
    }  # one route per prompt
    assert "| sphere | 2 |" in (out / "evaluation.md").read_text()
    assert (out / "evaluation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = CliRunner().invoke(main, ["evaluate", "--data", str(data), "--clicks", "x"])
    assert r.exit_code == 2 and "--clicks x" in r.output


def test_a_shipped_gate_serves_exactly_its_expert_set(
    tmp_path, monkeypatch, sammoe_home, plugin_host, test_foundation, calibrated_expert
):
    """The embedded default: a gate shipped with sammoe is used when it matches the enabled experts."""
    from sammoe_core.experts.foundations import choose_foundation
    from sammoe_core.experts.registry import Registry
    from sammoe_core.moe import gate_choice
    from sammoe_core.moe.retrain import retrain_gate

    choose_foundation(str(test_foundation.weights))
    _add(calibrated_expert("alpha", 41))
    report = retrain_gate(epochs=2, device="cpu", prompts_per_class=1, progress=False)
    shipped = tmp_path / "shipped-gates"
    shutil.copytree(report.gate_dir, shipped / "default")
    monkeypatch.setattr(gate_choice, "SHIPPED_GATES", shipped)
    with Registry().update() as state:
        state.gate = None
    with warnings.catch_warnings():
        warnings.simplefilter("error", StaleGateWarning)
        seg = build_from_registry("cpu")
    assert seg.gate is not None and seg.describe()["gate"] == str(shipped / "default")
    _add(calibrated_expert("beta", 42))
    with pytest.warns(StaleGateWarning):
        assert build_from_registry("cpu").gate is None


def test_a_target_keeps_its_route_across_clicks_and_extra_crops(test_foundation, make_expert):
    foundation = test_foundation.load()
    experts = {"a": make_expert("a", seed=7), "b": make_expert("b", seed=8)}
    gate = _HandGate([0.0, 0.0, 4.0])  # b
    moe = MoESegmenter(foundation, experts, gate, ThresholdPolicy(tau=0.5), foundation_sha256=test_foundation.sha256)
    pts, lab = torch.tensor([[[20.0, 40.0, 33.0]]]), torch.tensor([[1]])
    state = moe.encode(torch.randn(1, 1, 64, 64, 64))
    first = moe.decode(state, pts, lab)
    assert first.info["chosen"] == {"b": 1.0} and first.route is not None and first.route.weights == {"b": 1.0}
    gate.logits = torch.tensor([[0.0, 4.0, 0.0]])  # the gate would now say a...
    route = first.route  # ...but the caller passes the target's route on: explicit state, none in the segmenter
    assert moe.decode(state, None, None, torch.zeros(1, 1, 16, 16, 16), route=route).info["chosen"] == {"b": 1.0}
    assert moe.decode(state, pts, 1 - lab, route=route).info["chosen"] == {"b": 1.0}  # a later click of the same target
    assert moe.decode(state, pts, lab).info["chosen"] == {"a": 1.0}  # the next target routes afresh
    assert not hasattr(moe, "start_target") and not hasattr(moe, "_route")


def test_a_batch_of_crops_routes_and_decodes_as_each_crop_alone(test_foundation, make_expert):
    """encode_batch (what --crop-batch uses) gives every crop the state encode gives it alone:
    the same gate route, and the same logits, also for an expert that runs its own encoder."""
    foundation = test_foundation.load()
    experts = {"dec": make_expert("dec", parts="decoder", seed=3), "enc": make_expert("enc", parts="all", seed=4)}
    gate = _HandGate([0.0, 0.0, 4.0])  # enc: p = 0.96
    moe = MoESegmenter(foundation, experts, gate, ThresholdPolicy(tau=0.5), foundation_sha256=test_foundation.sha256)
    crops = torch.randn(3, 1, 64, 64, 64)
    pts, lab = torch.tensor([[[20.0, 40.0, 33.0]]]), torch.tensor([[1]])
    states = moe.encode_batch(crops)
    assert len(states) == 3
    for i, state in enumerate(states):
        batched, alone = moe.decode(state, pts, lab), moe.decode(moe.encode(crops[i : i + 1]), pts, lab)
        assert batched.route == alone.route and batched.info["chosen"] == {"enc": 1.0}
        assert torch.allclose(batched.low_res_logits, alone.low_res_logits, atol=1e-4, rtol=1e-4)
