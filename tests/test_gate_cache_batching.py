"""The gate cache filled in batches equals the cache filled one prompt at a time, and an
interrupted batched fill keeps the prompts it wrote."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sammoe_core.model import Sam3D
from sammoe_core.moe.gate_training import Candidate, GateCache, TrainingPrompt
from tests.conftest import randomize_weights

# Largest differences measured between batch 1 and batches 2, 3 and 5 on the 2-core CPU (torch
# 2.13, sammoe-tiny, 1 and 2 threads): embedding 5.5e-6 (values up to 4.3), sparse 2.4e-7; the
# cached fp16 logits at most one fp16 step apart (excess over a step 2.8e-7); Dice: with one
# thread 1 of the 15 values 1.4e-7 apart at batch 2, 3 and 5 (one voxel outside the target whose
# logit sits within rounding of 0 flips), with two threads all equal. The tolerances sit just
# above them.
FEATURE_ATOL = 1e-5
LOGITS_RTOL, LOGITS_ATOL = 2**-10, 1e-6  # one fp16 step
DICE_ATOL = 1e-6


def _prompts(size: int, n: int) -> list[TrainingPrompt]:
    gen = torch.Generator().manual_seed(5)
    grid = torch.stack(torch.meshgrid(*[torch.arange(size)] * 3, indexing="ij")).float()
    prompts = []
    for i in range(n):
        centre = torch.randint(size // 4, 3 * size // 4, (3,), generator=gen)
        target = ((grid - centre[:, None, None, None].float()) ** 2).sum(0) < (10 + 2 * i) ** 2
        image = torch.randn(1, size, size, size, generator=gen) + 2.0 * target.float()
        prompts.append(TrainingPrompt(f"p{i}", image, target, centre, group=f"case{i // 2}"))
    return prompts


def _network(seed: int, decoder_of: Sam3D | None = None) -> Sam3D:
    """A sammoe-tiny network with weights of a realistic scale (the test foundation's are tiny,
    so every logit is about -0.002 and every Dice 0); with ``decoder_of``: that network with
    another mask decoder, an expert that shares its encoder."""
    model = Sam3D("sammoe-tiny").eval()
    randomize_weights(model, seed)
    if decoder_of is not None:
        decoder = {k: v.clone() for k, v in model.mask_decoder.state_dict().items()}
        model.load_state_dict(decoder_of.state_dict())
        model.mask_decoder.load_state_dict(decoder)
    return model


@pytest.fixture(scope="module")
def candidates() -> tuple[Candidate, list[Candidate]]:
    foundation_model = _network(1)
    experts = [_network(2, decoder_of=foundation_model), _network(3)]
    return Candidate("foundation", "f" * 64, lambda: foundation_model), [
        Candidate("decoder-only", "d" * 64, lambda: experts[0]),
        Candidate("own-encoder", "e" * 64, lambda: experts[1], own_encoder=True),
    ]


def _files(root: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {str(p.relative_to(root)): load_file(str(p)) for p in sorted(root.rglob("*.safetensors"))}


def test_batched_fill_equals_one_at_a_time(tmp_path, candidates):
    foundation, experts = candidates
    prompts = _prompts(64, 5)
    cpu = torch.device("cpu")
    single, single_stats = GateCache(tmp_path / "single").build(prompts, foundation, experts, cpu, batch_size=1)

    batched = GateCache(tmp_path / "batched")
    batched.build(prompts[1:2], foundation, experts, cpu, batch_size=1)  # p1 cached already
    batched.build(prompts[3:4], foundation, [], cpu, batch_size=1)  # p3: features + foundation only
    stream = [*prompts, prompts[0]]  # a repeated prompt is filled once
    records, stats = batched.build(stream, foundation, experts, cpu, batch_size=3)  # chunks of 3, 2

    assert [r["key"] for r in records] == [p.key for p in prompts]
    # per prompt, as before: 3 foundation passes (p1, p3 had features) + 4 own-encoder passes
    assert stats.encoder_passes == 3 + 4 and single_stats.encoder_passes == 5 + 5
    assert stats.candidate_passes == {"foundation": 3, "decoder-only": 4, "own-encoder": 4}
    for a, b in zip(single, records):
        assert a["dice"].keys() == b["dice"].keys()
        for name, d in a["dice"].items():
            assert abs(d - b["dice"][name]) <= DICE_ATOL, (a["key"], name)
        assert list(b["dice"]) == ["foundation", "decoder-only", "own-encoder"]
        assert torch.equal(a["features"]["click"], b["features"]["click"])
        for part in ("embedding", "sparse"):
            assert torch.allclose(a["features"][part], b["features"][part], rtol=0, atol=FEATURE_ATOL), part
    assert len({d for r in single for d in r["dice"].values()}) > 3  # the Dice values tell prompts apart

    ones, threes = _files(tmp_path / "single"), _files(tmp_path / "batched")
    assert sorted(ones) == sorted(threes) and len(ones) == 5 * (1 + 3)  # same layout and keys
    for name, tensors in ones.items():
        assert tensors.keys() == threes[name].keys()
        for key, value in tensors.items():
            other = threes[name][key]
            assert value.dtype == other.dtype and value.shape == other.shape
            rtol, atol = (LOGITS_RTOL, LOGITS_ATOL) if key == "low_res_logits" else (0, FEATURE_ATOL)
            assert torch.allclose(other.float(), value.float(), rtol=rtol, atol=atol), (name, key)


def test_an_interrupted_batched_fill_keeps_its_finished_chunks(tmp_path, candidates):
    foundation, experts = candidates
    experts = experts[:1]  # decoder-only: one encoder pass per prompt
    prompts = _prompts(64, 5)
    cache = GateCache(tmp_path / "cache")

    def killed():  # the fill stops while the second chunk is gathered
        yield from prompts[:4]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.build(killed(), foundation, experts, torch.device("cpu"), batch_size=3)
    assert [cache.complete(p.key, [foundation, *experts]) for p in prompts] == [True] * 3 + [False] * 2
    assert not list((tmp_path / "cache").rglob("*.part*"))

    records, stats = cache.build(prompts, foundation, experts, torch.device("cpu"), batch_size=3)
    assert len(records) == 5 and stats.encoder_passes == 2
    assert stats.candidate_passes == {"foundation": 2, "decoder-only": 2}


def test_batch_size_must_be_positive(tmp_path, candidates):
    foundation, experts = candidates
    with pytest.raises(ValueError, match="batch size 0"):
        GateCache(tmp_path / "c").build(_prompts(64, 1), foundation, experts, torch.device("cpu"), batch_size=0)


def test_retrain_gate_refuses_a_batch_size_below_one(sammoe_home):
    from sammoe_core.errors import SammoeError
    from sammoe_core.moe.retrain import retrain_gate

    with pytest.raises(SammoeError, match="batch size 0: need at least 1"):
        retrain_gate(device="cpu", batch_size=0, progress=False)
    assert not sammoe_home.exists()  # refused before anything was written


def test_the_cli_refuses_a_batch_size_below_one(sammoe_home):
    from click.testing import CliRunner

    from sammoe_core.cli import main

    result = CliRunner().invoke(main, ["retrain-gate", "--batch-size", "0", "--device", "cpu"])
    assert result.exit_code == 2 and "--batch-size" in result.output and "0 is not in the range" in result.output


def test_dice_per_item_equals_dice_of_each_pair(fresh_seed):
    from sammoe_core.evaluation.metrics import dice, dice_per_item

    gen = torch.Generator().manual_seed(fresh_seed)
    pred = torch.rand(4, 9, 9, 9, generator=gen) > 0.6
    target = torch.rand(4, 9, 9, 9, generator=gen) > 0.8
    pred[2] = False
    target[2] = False  # both empty: 1.0
    target[3] = False  # only the prediction: 0.0
    values = dice_per_item(pred, target)
    assert values == [dice(p, t) for p, t in zip(pred, target)]
    assert values[2] == 1.0 and values[3] == 0.0 and 0 < values[0] < 1
