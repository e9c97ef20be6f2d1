"""Prompt models and files, coordinates against a volume, simulated clicks, intensity handling."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sammoe_core.segmentation.intensity import decide_modality, normalize_crop
from sammoe_core.segmentation.preprocessing import Preprocessing
from sammoe_core.segmentation.prompts import PromptError, Target, clicks_in_crop, load_prompts, resolve_target


def test_prompts_file_shorthand_becomes_ordered_clicks(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(
        json.dumps(
            {
                "targets": [
                    {"name": "liver", "label": 1, "points": [[10, 20, 30]], "negative_points": [[1, 2, 3]]},
                    {"name": "spleen", "label": 2, "points_mm": [[-5.5, 0, 12]], "box_mm": [0, 0, 0, -4, 8, 2]},
                    {"name": "kidney", "label": 300, "box": [1, 2, 3, 4, 5, 6]},
                ]
            }
        )
    )
    liver, spleen, kidney = load_prompts(path)
    assert [(c.position, c.positive, c.space) for c in liver.clicks] == [
        ((10, 20, 30), True, "voxel"),
        ((1, 2, 3), False, "voxel"),
    ]
    assert spleen.clicks[0].space == "mm" and spleen.box.space == "mm"
    assert spleen.box.lower == (-4, 0, 0) and spleen.box.upper == (0, 8, 2)
    assert kidney.label == 300 and kidney.clicks == ()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not a readable JSON"),
        ({"targets": []}, "at least 1"),
        ({"targets": [{"negative_points": [[1, 2, 3]]}]}, "needs a positive click or a box"),
        ({"targets": [{"points": [[1, 2, 3]]}, {"points": [[4, 5, 6]]}]}, "label values must be unique"),
        ({"targets": [{"points": [[1, 2]]}]}, "targets.0.clicks.0.position"),
        ({"targets": [{"points": [[1, 2, 3]], "label": 0}]}, "label"),
        ({"targets": [{"points": [[1, 2, 3]], "colour": "red"}]}, "colour"),
        ({"targets": [{"box": [1, 2, 3]}]}, "6 numbers"),
    ],
)
def test_bad_prompt_files_name_the_file_and_the_problem(tmp_path, content, problem):
    path = tmp_path / "bad.prompts.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(PromptError, match=problem) as caught:
        load_prompts(path)
    assert str(caught.value).startswith(str(path))
    assert "\n" not in str(caught.value)


def test_resolve_target_gives_voxel_and_mm_and_checks_bounds():
    affine = np.array([[-2.0, 0, 0, 50], [0, 1.5, 0, -20], [0, 0, 3, 7], [0, 0, 0, 1]])
    shape = (20, 30, 10)
    resolved = resolve_target(
        Target(points=[[4, 5, 6]], negative_points_mm=[[42.0, -12.5, 10.0]]), affine, shape, "vol.nii.gz"
    )
    assert np.allclose(resolved.clicks[0].mm, [42, -12.5, 25])
    assert np.allclose(resolved.clicks[1].voxel, [4, 5, 1])
    assert np.allclose(resolved.anchor_mm, [42, -12.5, 25])
    boxed = resolve_target(Target(box=[2, 4, 6, 8, 10, 8]), affine, shape, "vol.nii.gz")
    assert boxed.clicks[0].from_box and np.allclose(boxed.clicks[0].voxel, [5, 7, 7])
    assert np.allclose(boxed.anchor_mm, affine[:3, :3] @ [5, 7, 7] + affine[:3, 3])
    only_box = resolve_target(Target(box=[2, 4, 6, 8, 10, 8]), affine, shape, "vol.nii.gz", box_as_click=False)
    assert only_box.clicks == [] and np.allclose(only_box.anchor_mm, boxed.anchor_mm)
    for target in (Target(points=[[20, 0, 0]]), Target(points=[[0, 0, -0.6]]), Target(box=[0, 0, 0, 5, 5, 12])):
        with pytest.raises(PromptError, match="vol.nii.gz: .*outside the volume"):
            resolve_target(target, affine, shape, "vol.nii.gz")


def test_clicks_in_crop_keeps_points_just_past_the_faces():
    points = np.array([[64.0, 64, 64], [128.4, 10, 10], [129.6, 10, 10], [-1.4, 5, 5], [-1.6, 5, 5]])
    coords, held = clicks_in_crop(points, start=np.array([0, 0, 0]), size=128)
    assert held.tolist() == [True, True, False, True, False]
    assert np.allclose(coords[0], [64, 64, 64])
    coords, _ = clicks_in_crop(points, start=np.array([64, 0, -64]), size=128)
    assert np.allclose(coords[0], [0, 64, 128])


def test_modality_decision_and_crop_normalisation():
    ct = np.full((10, 10, 10), -1000.0, np.float32)
    ct[3:7, 3:7, 3:7] = 40
    assert decide_modality(ct).modality == "ct"
    mr = np.random.default_rng(0).uniform(0, 900, (10, 10, 10)).astype(np.float32)
    decision = decide_modality(mr)
    assert decision.modality == "mr" and decision.requested == "auto" and "percentile" in decision.reason
    assert decide_modality(ct, "mr").modality == "mr"

    prep = Preprocessing()
    crop = torch.tensor([0.0, 0.0, 100.0, 200.0, 3000.0, -2000.0])
    clamped = torch.tensor([0.0, 0.0, 100.0, 200.0, 1000.0, -1000.0])
    foreground = clamped[clamped > 0]
    expected = (clamped - foreground.mean()) / foreground.std()
    assert torch.allclose(normalize_crop(crop, "ct", prep), expected)
    unclamped = crop[crop > 0]
    assert torch.allclose(normalize_crop(crop, "mr", prep), (crop - unclamped.mean()) / unclamped.std())
    flat = normalize_crop(torch.zeros(8), "mr", prep)
    assert torch.isfinite(flat).all()
