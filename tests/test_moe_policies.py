"""Each selection policy's decision rule on hand-set gate outputs, and the gate's click features."""

from __future__ import annotations

import pytest
import torch

from sammoe_core.errors import SammoeError
from sammoe_core.model import get_config
from sammoe_core.moe.gate import GateInput, MlpGate, sample_at
from sammoe_core.moe.policies import BUILTIN_POLICIES

CANDS = ["foundation", "esophagus", "hip", "spinal-cord"]


def make(name, **kw):
    factory, options = BUILTIN_POLICIES[name]
    return factory(**options.model_validate(kw).model_dump())


def test_policy_options_are_validated_by_each_policys_model(plugin_host):
    """Before: every policy took tau, k and expert and swallowed the rest with **_ (a misspelt
    option passed silently)."""
    from sammoe_core.plugins.factories import OptionError, policy_factories

    policies = policy_factories()
    assert policies["threshold"].build(options={"tau": 0.7}).tau == 0.7
    for name, options, message in (
        ("threshold", {"tua": 0.7}, "option tua: Extra inputs are not permitted"),
        ("threshold", {"tau": 1.5}, "option tau: Input should be less than or equal to 1"),
        ("top1", {"tau": 0.2}, r"option tau: Extra inputs are not permitted \(its options: none\)"),
        ("topk-blend", {"k": 0}, "option k"),
        ("fixed", {}, "option expert: Field required"),
    ):
        with pytest.raises(OptionError, match=message):
            policies[name].build(options=options)


def test_threshold_picks_a_confident_expert_else_the_foundation():
    pol = make("threshold", tau=0.6)
    assert pol.select([0.1, 0.7, 0.1, 0.1], CANDS).weights == {"esophagus": 1.0}
    assert pol.select([0.3, 0.5, 0.1, 0.1], CANDS).weights == {"foundation": 1.0}  # 0.5 < tau
    assert pol.select([0.6, 0.2, 0.1, 0.1], CANDS).weights == {"foundation": 1.0}
    assert make("threshold", tau=0.5).select([0.3, 0.5, 0.1, 0.1], CANDS).weights == {"esophagus": 1.0}


def test_top1_and_foundation_and_fixed():
    assert make("top1").select([0.3, 0.2, 0.45, 0.05], CANDS).weights == {"hip": 1.0}
    assert make("foundation").select([0.0, 0.0, 1.0, 0.0], CANDS).weights == {"foundation": 1.0}
    assert make("fixed", expert="spinal-cord").select([1, 0, 0, 0], CANDS).weights == {"spinal-cord": 1.0}
    with pytest.raises(SammoeError, match="no candidate 'liver'"):
        make("fixed", expert="liver").select([1, 0, 0, 0], CANDS)


def test_topk_blend_renormalises_the_top_k():
    sel = make("topk-blend", k=2).select([0.1, 0.6, 0.2, 0.1], CANDS)
    assert sel.weights == pytest.approx({"esophagus": 0.75, "hip": 0.25})
    assert sel.chosen == ["esophagus", "hip"]
    assert make("topk-blend", k=1).select([0.1, 0.6, 0.2, 0.1], CANDS).weights == {"esophagus": 1.0}


def test_gate_samples_the_embedding_at_the_click():
    emb = torch.zeros(1, 2, 4, 4, 4)
    emb[0, 0, 1, 2, 3] = 5.0  # token (1, 2, 3) covers crop voxels 16..31, 32..47, 48..63 of 64³
    at = sample_at(emb, torch.tensor([[23.5, 39.5, 55.5]]), 64)
    assert at[0, 0].item() == pytest.approx(5.0)
    off = sample_at(emb, torch.tensor([[55.5, 39.5, 23.5]]), 64)  # axes swapped: elsewhere
    assert off[0, 0].item() == pytest.approx(0.0)


def test_mlp_gate_scores_every_candidate():
    cfg = get_config("sammoe-tiny")
    gate = MlpGate(cfg, num_candidates=4).eval()
    inp = GateInput(
        embedding=torch.randn(3, cfg.prompt_dim, 4, 4, 4),
        sparse=torch.randn(3, 2, cfg.prompt_dim),
        points=torch.randint(0, 64, (3, 1, 3)).float(),
        point_labels=torch.ones(3, 1, dtype=torch.long),
        crop_size=64,
    )
    assert gate(inp).shape == (3, 4)
