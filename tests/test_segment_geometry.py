"""Geometry of segment(): crops sampled at the right place, masks landing on the right voxels.

No trained weights: :class:`EllipsoidPredictor` answers with an ellipsoid of known radii (mm)
along the crop axes around the click, so the expected mask in the original file is known.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from segment_support import LOGIT, EllipsoidPredictor, make_affine, rotation, voxel_centres_mm

from sammoe_core.segmentation.pipeline import segment
from sammoe_core.segmentation.predictor import CropPrediction
from sammoe_core.segmentation.prompts import PromptError, Target

NEAREST_SLACK_MM = 0.75 * np.sqrt(3)  # a voxel's distance to its nearest 1.5 mm lattice point

# name -> (unit axis directions as columns, spacing, the crop axes R, A, S expected as columns)
ORIENTATIONS = {
    "RAS": (np.eye(3), (1.5, 1.5, 1.5), np.eye(3)),
    "LAS": (np.diag([-1.0, 1, 1]), (1.4, 1.5, 1.6), np.eye(3)),
    "LPS": (np.diag([-1.0, -1, 1]), (1.5, 1.3, 1.7), np.eye(3)),
    "LSA": (np.array([[-1.0, 0, 0], [0, 0, 1], [0, 1, 0]]), (1.5, 1.5, 1.5), np.eye(3)),
    "oblique": (rotation(20, 10) @ np.diag([-1.0, 1, 1]), (1.4, 1.4, 1.8), rotation(20, 10)),
    "anisotropic": (np.diag([1.0, -1, 1]), (0.8, 1.1, 3.0), np.eye(3)),
}


def _grid(name: str, fov_mm: float = 84.0):
    directions, spacing, crop_axes = ORIENTATIONS[name]
    shape = tuple(int(round(fov_mm / s)) for s in spacing)
    centre_voxel = (np.asarray(shape) - 1) / 2
    affine = make_affine(directions, spacing, centre_voxel, centre_mm=(12.0, -30.0, 45.0))
    return shape, affine, crop_axes


def _ellipsoid_norm(points_mm: np.ndarray, centre_mm: np.ndarray, axes: np.ndarray, radii) -> np.ndarray:
    local = (points_mm - centre_mm) @ axes  # coordinates along the crop axes
    return np.sqrt(((local / np.asarray(radii)) ** 2).sum(axis=-1))


@pytest.mark.parametrize("name", list(ORIENTATIONS))
def test_mask_lands_on_the_right_voxels_and_millimetres(name, fresh_seed):
    rng = np.random.default_rng(fresh_seed)
    shape, affine, crop_axes = _grid(name)
    radii = (19.0, 13.0, 9.0)
    click = np.round(np.asarray(shape) / 2 + rng.uniform(-4, 4, 3)).astype(int)
    image = rng.uniform(10, 200, shape).astype(np.float32)
    predictor = EllipsoidPredictor(radii, crop_size=64)
    result = segment(nib.Nifti1Image(image, affine), Target(points=[click.tolist()]), predictor)

    mask = result.label_map == 1
    assert mask.shape == shape and result.label_map.dtype == np.uint8
    centres = voxel_centres_mm(shape, affine)
    click_mm = affine[:3, :3] @ click + affine[:3, 3]
    norm = _ellipsoid_norm(centres, click_mm, crop_axes, radii)
    band = NEAREST_SLACK_MM / min(radii)
    assert mask[norm <= 1 - band].all(), "voxels well inside the ellipsoid were left out"
    assert not mask[norm >= 1 + band].any(), "voxels well outside the ellipsoid were labelled"
    assert np.allclose(centres[mask].mean(axis=0), click_mm, atol=0.6)
    expected_ml = 4 / 3 * np.pi * np.prod(radii) / 1000
    assert result.targets[0].volume_ml == pytest.approx(expected_ml, rel=0.08)
    # the same target given in millimetres gives the same voxels
    again = segment(nib.Nifti1Image(image, affine), Target(points_mm=[click_mm.tolist()]), predictor)
    assert np.array_equal(again.label_map, result.label_map)


@pytest.mark.parametrize("name", ["LPS", "LSA", "oblique", "anisotropic"])
def test_crop_is_the_image_resampled_on_ras_axes_around_the_click(name, fresh_seed):
    """A linear intensity ramp in world mm must reappear, z-scored, at the crop's lattice points."""
    rng = np.random.default_rng(fresh_seed)
    shape, affine, crop_axes = _grid(name, fov_mm=70.0)
    gradient = np.array([1.0, -2.0, 3.0])
    image = (2000 + voxel_centres_mm(shape, affine) @ gradient).astype(np.float32)
    click = np.round(np.asarray(shape) / 2 + rng.uniform(-3, 3, 3)).astype(int)
    predictor = EllipsoidPredictor(10.0, crop_size=64)
    segment(image, Target(points=[click.tolist()]), predictor, affine=affine, modality="mr")

    crop = predictor.crops[0][0, 0].numpy().astype(np.float64)
    size = 64
    v = np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing="ij"), axis=-1) - size // 2
    click_mm = affine[:3, :3] @ click + affine[:3, 3]
    lattice_mm = click_mm + (v * 1.5) @ crop_axes.T
    expected = 2000 + lattice_mm @ gradient
    voxel = (lattice_mm - affine[:3, 3]) @ np.linalg.inv(affine[:3, :3]).T
    well_inside = np.all((voxel >= 0) & (voxel <= np.asarray(shape) - 1), axis=-1)
    assert well_inside.sum() > 1000
    slope, intercept = np.polyfit(expected[well_inside], crop[well_inside], 1)
    assert slope > 0
    assert np.abs(slope * expected[well_inside] + intercept - crop[well_inside]).max() < 1e-3
    clear = 1e-3  # float32 sampling may decide points within this of a voxel face either way
    outside = np.any((voxel < -0.5 - clear) | (voxel > np.asarray(shape) - 0.5 + clear), axis=-1)
    assert outside.any()
    # padding is the constant 0 before z-scoring, so it holds the z-score of 0: the intercept
    assert np.abs(crop[outside] - intercept).max() < 1e-3


def test_large_target_is_covered_by_edge_extension_without_gap_or_seam():
    """A 130 mm-radius sphere is larger than one 128³ crop at 1.5 mm (192 mm)."""
    spacing, n, radius = 2.5, 120, 130.0
    affine = make_affine(np.diag([-1.0, 1, 1]), (spacing,) * 3, ((n - 1) / 2,) * 3)
    image = np.full((n, n, n), 100.0, dtype=np.float32)
    predictor = EllipsoidPredictor(radius, crop_size=128, keep_crops=False)
    result = segment(image, Target(points_mm=[[0.0, 0.0, 0.0]]), predictor, affine=affine)

    target = result.targets[0]
    assert 1 < len(target.crops) <= 27 and not target.crops_truncated
    assert any(c["mask_prompt"].startswith("seeded") for c in target.crops)
    distance = np.linalg.norm(voxel_centres_mm((n,) * 3, affine), axis=-1)
    truth = distance <= radius
    mask = result.label_map == 1
    dice = 2 * (mask & truth).sum() / (mask.sum() + truth.sum())
    assert dice > 0.97
    # no holes anywhere inside (crop boundaries included) and nothing outside: only the
    # surface shell, within the nearest-neighbour slack, may differ from the analytic sphere
    assert mask[distance <= radius - NEAREST_SLACK_MM].all()
    assert not mask[distance >= radius + NEAREST_SLACK_MM].any()


def test_crop_bound_stops_edge_extension_and_says_so():
    spacing, n = 3.0, 80
    affine = make_affine(np.eye(3), (spacing,) * 3, ((n - 1) / 2,) * 3)
    image = np.full((n, n, n), 100.0, dtype=np.float32)
    result = segment(image, Target(points_mm=[[0, 0, 0]]), EllipsoidPredictor(110.0, 64), affine=affine, max_crops=3)
    assert len(result.targets[0].crops) == 3 and result.targets[0].crops_truncated


class _SeededPredictor(EllipsoidPredictor):
    """An ellipsoid for the first crop; for every crop edge extension adds (those get a mask
    prompt), ``extension_mask`` instead."""

    def __init__(self, radii_mm, extension_mask):
        super().__init__(radii_mm, 64, keep_crops=False)
        self.extension_mask = extension_mask

    def decode(self, state, points, point_labels, mask_prompt=None, boxes=None, route=None):
        first = super().decode(state, points, point_labels, mask_prompt, boxes, route)
        if mask_prompt is None:
            return first
        return CropPrediction(torch.where(self.extension_mask, LOGIT, -LOGIT)[None, None])


def _tube_volume():
    spacing, n = 3.0, 80
    affine = make_affine(np.eye(3), (spacing,) * 3, ((n - 1) / 2,) * 3)
    return np.full((n, n, n), 100.0, dtype=np.float32), affine


def test_a_crop_that_floods_stops_edge_extension_and_says_so():
    """A thin tube leaves the first crop through its A faces; the crops added there flood
    entirely (a leaking mask). Without the stop each would add crops on every face up to the bound."""
    image, affine = _tube_volume()
    flood = torch.ones((64,) * 3, dtype=torch.bool)
    result = segment(image, Target(points_mm=[[0, 0, 0]]), _SeededPredictor((12.0, 200.0, 12.0), flood), affine=affine)
    crops = result.targets[0].crops
    assert len(crops) == 3 and not result.targets[0].crops_truncated
    assert "extension_stopped" not in crops[0]
    assert all(c["extension_stopped"].startswith("implausible growth") for c in crops[1:])
    assert result.to_dict()["settings"]["extension_stops"]["flood_fill"] == 0.9


def test_a_crop_that_adds_almost_nothing_stops_edge_extension():
    """The added crops hold only specks in their corners: they touch every face, add almost nothing."""
    image, affine = _tube_volume()
    specks = torch.zeros((64,) * 3, dtype=torch.bool)
    for corner in np.ndindex(2, 2, 2):
        specks[tuple(slice(0, 2) if c == 0 else slice(62, 64) for c in corner)] = True
    result = segment(image, Target(points_mm=[[0, 0, 0]]), _SeededPredictor((12.0, 200.0, 12.0), specks), affine=affine)
    crops = result.targets[0].crops
    assert len(crops) == 3
    assert all(c["extension_stopped"].startswith("adds ") for c in crops[1:])


def test_targets_of_a_prompt_file_get_their_label_values(fresh_seed):
    shape, affine, _ = _grid("LPS")
    image = np.random.default_rng(fresh_seed).uniform(10, 200, shape).astype(np.float32)
    centres = voxel_centres_mm(shape, affine)
    first, second = np.array([20, 20, 20]), np.array([36, 40, 30])
    prompts = {
        "targets": [
            {"name": "left thing", "label": 3, "points": [first.tolist()]},
            {"name": "right thing", "label": 7, "points_mm": [(affine[:3, :3] @ second + affine[:3, 3]).tolist()]},
        ]
    }
    result = segment(image, prompts, EllipsoidPredictor(8.0, 64), affine=affine)
    for point, label in ((first, 3), (second, 7)):
        near = np.linalg.norm(centres - (affine[:3, :3] @ point + affine[:3, 3]), axis=-1) < 8.0 - NEAREST_SLACK_MM
        assert (result.label_map[near] == label).all()
    assert set(np.unique(result.label_map)) == {0, 3, 7}
    assert result.to_dict()["labels"] == {"3": "left thing", "7": "right thing"}


def test_overlapping_targets_go_to_the_more_probable(fresh_seed):
    shape, affine, _ = _grid("RAS")
    image = np.full(shape, 50.0, dtype=np.float32)
    centre = (np.asarray(shape) // 2).tolist()

    class Weaker(EllipsoidPredictor):
        def decode(self, *args, **kwargs):
            prediction = super().decode(*args, **kwargs)
            if len(self.decodes) > 1:  # the second target is less sure of itself
                prediction.low_res_logits = prediction.low_res_logits / 4
            return prediction

    targets = [Target(name="a", label=1, points=[centre]), Target(name="b", label=2, points=[centre])]
    result = segment(image, targets, Weaker(10.0, 64), affine=affine)
    assert (result.label_map == 1).sum() > 100 and not (result.label_map == 2).any()
    assert result.targets[1].voxel_count == 0


def test_clicks_reach_the_predictor_in_order_with_the_previous_logits(fresh_seed):
    shape, affine, _ = _grid("RAS")
    image = np.full(shape, 50.0, dtype=np.float32)
    target = Target(points=[[28, 28, 28]], negative_points=[[40, 28, 28], [28, 12, 28]])
    for policy, sizes in (("all", [1, 2, 3]), ("newest", [1, 1, 1])):
        predictor = EllipsoidPredictor(10.0, 64)
        segment(image, target, predictor, affine=affine, clicks=policy)
        calls = [d for d in predictor.decodes if d["crop"] == 0]
        assert [len(c["points"]) for c in calls] == sizes
        assert calls[0]["mask_prompt"] is None
        assert all(c["mask_prompt"] is not None for c in calls[1:])
        labels = [int(label) for c in calls for label in c["labels"]]
        assert labels == ([1, 1, 0, 1, 0, 0] if policy == "all" else [1, 0, 0])
        first = calls[0]["points"][0].numpy()
        assert np.allclose(first, 32.0)  # the anchor click sits at the crop centre
        # the first negative click is 12 voxels further along R, the second 16 voxels back along A
        # (1.5 mm voxels, as the lattice): the same steps in crop voxels, on the same axes
        points = calls[-1]["points"].numpy()
        assert np.allclose(points[-1] - first, [0, -16, 0])
        if policy == "all":
            assert np.allclose(points[1] - first, [12, 0, 0])


def test_a_box_needs_box_embeddings_or_box_as_click():
    shape, affine, _ = _grid("RAS")
    image = np.full(shape, 50.0, dtype=np.float32)
    target = Target(box=[20, 22, 24, 36, 34, 32])
    plain = EllipsoidPredictor(8.0, 64)
    with pytest.raises(PromptError, match="a box needs a network with box embeddings.*--box-as-click"):
        segment(image, target, plain, affine=affine)  # before: silently a centre click
    assert not plain.decodes
    result = segment(image, target, plain, affine=affine, box_as_click=True)
    record = result.to_dict()["targets"][0]
    assert "no box embeddings" in record["box_handling"]
    assert record["clicks"][0]["from_box"] and record["clicks"][0]["voxel"] == [28.0, 28.0, 28.0]
    assert plain.decodes[0]["boxes"] is None and np.allclose(plain.decodes[0]["points"][0].numpy(), 32)

    boxed = EllipsoidPredictor(8.0, 64, box_prompts=True)
    result = segment(image, target, boxed, affine=affine)
    assert "box embeddings" in result.to_dict()["targets"][0]["box_handling"]
    box = boxed.decodes[0]["boxes"][0].numpy()
    assert np.allclose(box, [[32 - 8, 32 - 6, 32 - 4], [32 + 8, 32 + 6, 32 + 4]])
    assert boxed.decodes[0]["points"] is None  # no click: the box alone prompts


def test_prompt_outside_the_volume_is_refused():
    shape, affine, _ = _grid("RAS")
    image = np.full(shape, 50.0, dtype=np.float32)
    with pytest.raises(PromptError, match="outside the volume"):
        segment(image, Target(points=[[shape[0] + 3, 5, 5]]), EllipsoidPredictor(8.0, 64), affine=affine)
    with pytest.raises(PromptError, match="outside the volume"):
        segment(image, Target(points_mm=[[900.0, 0, 0]]), EllipsoidPredictor(8.0, 64), affine=affine)


def test_probabilities_follow_the_label_map(fresh_seed):
    shape, affine, _ = _grid("LAS")
    image = np.random.default_rng(fresh_seed).uniform(10, 200, shape).astype(np.float32)
    result = segment(
        image, Target(points=[[28, 28, 28]]), EllipsoidPredictor(10.0, 64), affine=affine, probabilities=True
    )
    probs = result.probabilities
    assert probs.shape == shape and probs.dtype == np.float32
    assert probs.min() >= 0 and probs.max() <= 1
    assert (probs[result.label_map == 1] > 0.4).mean() > 0.95
    assert (probs[result.label_map == 0] < 0.6).mean() > 0.95


def test_the_public_segment_is_a_typed_function():
    """Before: ``sammoe_core.segment`` was a module made callable; its signature was (*args, **kwargs)."""
    import inspect

    import sammoe_core

    assert inspect.isfunction(sammoe_core.segment)
    assert list(inspect.signature(sammoe_core.segment).parameters)[:3] == ["image", "prompts", "predictor"]
    shape, affine, _ = _grid("RAS")
    image = np.full(shape, 50.0, dtype=np.float32)
    result = sammoe_core.segment(image, Target(points=[[28, 28, 28]]), EllipsoidPredictor(8.0, 64), affine=affine)
    assert result.targets[0].voxel_count > 0


def test_a_box_capable_network_segments_click_only_targets():
    """Before: a box-capable network crashed on a target without a box."""
    shape, affine, _ = _grid("RAS")
    image = np.full(shape, 50.0, dtype=np.float32)
    boxed = EllipsoidPredictor(8.0, 64, box_prompts=True)
    result = segment(image, Target(points=[[28, 28, 28]]), boxed, affine=affine)
    assert result.label_map[28, 28, 28] == 1 and boxed.decodes[0]["boxes"] is None


def test_the_public_api_lists_every_lazy_name():
    import sammoe_core

    assert set(sammoe_core.__all__) == {"__version__", "hookimpl", *sammoe_core._LAZY}
    for name in sammoe_core.__all__:
        assert getattr(sammoe_core, name) is not None
