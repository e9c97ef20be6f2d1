"""`sammoe finetune` on a tiny generated dataset: the loss goes down and a valid expert comes out."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from sammoe_core.cli import main
from sammoe_core.testing import check_expert_folder
from tests.data_support import write_sphere_dataset


def _loss(model, samples):
    from monai.losses import DiceCELoss

    from sammoe_core.training.interaction import interactive_loss

    fn = DiceCELoss(sigmoid=True, squared_pred=True)
    with torch.no_grad():
        return sum(
            interactive_loss(
                model,
                s["image"][None],
                s["target"][None],
                1,
                fn,
                torch.Generator().manual_seed(0),
                first_click=s["first_click"][None],
            ).loss.item()
            for s in samples
        ) / len(samples)


@pytest.mark.slow
def test_finetune_lowers_the_loss_and_writes_a_valid_expert(tmp_path, sammoe_home, test_foundation):
    from sammoe_core.experts.foundations import choose_foundation
    from sammoe_core.segmentation.preprocessing import Preprocessing
    from sammoe_core.training.data import CropSampler, prepare_dataset

    data = tmp_path / "spheres"
    write_sphere_dataset(data)
    choose_foundation(str(test_foundation.weights))
    pre = Preprocessing(crop_size=64)
    cases = prepare_dataset(data, tmp_path / "cache", pre, ["sphere"], 0)
    samples = [CropSampler(cases, pre, augment=False).sample(i) for i in range(4)]
    out = tmp_path / "sphere-expert"
    r = CliRunner().invoke(
        main,
        [
            "finetune",
            "--data",
            str(data),
            "--name",
            "sphere",
            "--classes",
            "sphere",
            "-o",
            str(out),
            "--steps",
            "30",
            "--lr",
            "1e-2",
            "--clicks",
            "3",
            "--device",
            "cpu",
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["steps"] == 30
    expert = check_expert_folder(out, test_foundation)
    assert expert.name == "sphere" and not expert.overrides_encoder
    assert all(k.startswith(("prompt_encoder.", "mask_decoder.")) for k in expert.load_delta())
    before = _loss(test_foundation.load(), samples)
    after = _loss(expert.build(test_foundation.load(), test_foundation.sha256), samples)
    assert after < 0.9 * before, (before, after)
    # the run folder resumes: a second call with the same settings has nothing left to train
    r2 = CliRunner().invoke(
        main,
        [
            "finetune",
            "--data",
            str(data),
            "--name",
            "sphere",
            "--classes",
            "sphere",
            "-o",
            str(out),
            "--steps",
            "30",
            "--lr",
            "1e-2",
            "--clicks",
            "3",
            "--device",
            "cpu",
            "--quiet",
            "--overwrite",
        ],
    )
    assert r2.exit_code == 0, r2.output
    assert json.loads(r2.output)["steps"] == 30


def test_finetune_refuses_unknown_classes(tmp_path, sammoe_home, test_foundation):
    from sammoe_core.experts.foundations import choose_foundation

    data = tmp_path / "spheres"
    write_sphere_dataset(data, n=1)
    choose_foundation(str(test_foundation.weights))
    r = CliRunner().invoke(
        main,
        [
            "finetune",
            "--data",
            str(data),
            "--name",
            "x",
            "--classes",
            "liver",
            "-o",
            str(tmp_path / "x"),
            "--steps",
            "2",
            "--quiet",
        ],
    )
    assert r.exit_code == 2 and "unknown classes" in r.output, r.output
