"""The phantom generator's invariants: anatomy inside the body, plausible volumes, connected thin
structures, determinism, world placement whatever the header orientation, spacing, MR mode."""

from __future__ import annotations

import functools
import json

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from scipy import ndimage

from sammoe_core.cli import main
from sammoe_core.errors import SammoeError
from sammoe_core.phantoms import LABEL_NAMES, LABELS, generate_phantom, phantom_case_seed, write_phantom_dataset
from sammoe_core.phantoms.labels import MULTI_PIECE
from sammoe_core.phantoms.placement import SPACING_RANGE_MM, draw_spacing
from sammoe_core.phantoms.styles import STYLES

FULL = np.ones((3, 3, 3), dtype=bool)  # 26-connectivity

# Plausible volumes (mL) for adults of 0.85-1.05 template size; generous, but an organ that is
# missing, cut in half or twice its size falls outside.
VOLUME_ML = {
    "lung_left": (800, 4500),
    "lung_right": (800, 4500),
    "liver": (700, 2800),
    "spleen": (60, 500),
    "kidney_left": (40, 250),
    "kidney_right": (40, 250),
    "bladder": (30, 600),
    "aorta": (80, 450),
    "spinal_cord": (5, 45),
    "esophagus": (15, 120),
    "hip_left": (30, 250),
    "hip_right": (30, 250),
}


@functools.cache
def cached_phantom(seed: int, contrast: str = "ct"):
    """Cases shared by several tests (generation is the slow part); tests never modify them."""
    return generate_phantom(seed, contrast)


@pytest.fixture
def case():
    return cached_phantom(11)


def canonical(phantom, array):
    """The array and affine in RAS axis order."""
    image = nib.as_closest_canonical(nib.Nifti1Image(array, phantom.affine))
    return np.asarray(image.dataobj), image.affine


def world_centroid(phantom, name):
    index = np.argwhere(phantom.labels == LABELS[name]).mean(axis=0)
    return phantom.affine[:3, :3] @ index + phantom.affine[:3, 3]


def test_labels_lie_inside_the_body(fresh_seed):
    phantom = generate_phantom(fresh_seed)
    labels = phantom.labels
    assert labels.dtype == np.uint8 and labels.max() <= max(LABEL_NAMES)
    outside = labels == 0
    next_to_outside = ndimage.binary_dilation(outside, FULL)
    organs_at_skin = np.unique(labels[next_to_outside & (labels > 1)])
    assert organs_at_skin.size == 0, f"labels touching the outside: {organs_at_skin}"
    # the envelope is one solid body: the outside is connected to the volume's border
    outside_parts, count = ndimage.label(outside)
    border = np.unique(
        np.concatenate(
            [
                outside_parts[[0, -1]].ravel(),
                outside_parts[:, [0, -1]].ravel(),
                outside_parts[:, :, [0, -1]].ravel(),
            ]
        )
    )
    assert set(range(1, count + 1)) <= set(border.tolist()), "air enclosed by the body is labelled 0"
    clear_of_body = outside & ~ndimage.binary_dilation(~outside, FULL, iterations=2)
    assert np.median(phantom.image[clear_of_body]) < -850  # air (and the table's foam)
    assert np.median(phantom.image[~outside]) > -300  # soft tissue, fat, bone, some lung


@pytest.mark.parametrize("seed", [11, 12])
def test_every_class_is_present_with_a_plausible_volume(seed):
    phantom = cached_phantom(seed)
    voxel_ml = np.prod(phantom.spacing) / 1000.0
    counts = np.bincount(phantom.labels.ravel(), minlength=14)
    for name, (low, high) in VOLUME_ML.items():
        volume = counts[LABELS[name]] * voxel_ml
        assert low <= volume <= high, f"{name}: {volume:.0f} mL"
    envelope_l = counts[1:].sum() * voxel_ml / 1000.0
    assert 15 <= envelope_l <= 80


def test_thin_structures_are_single_connected_tubes(case):
    labels, affine = canonical(case, case.labels)
    spacing = np.abs(np.diag(affine)[:3])
    # the cord ends at the conus (about L1-L2), the esophagus at the stomach: both run out of
    # the top of the field of view, which reaches down to the hips
    for name, min_span, max_area_mm2 in (("spinal_cord", 0.4, 150.0), ("esophagus", 0.3, 450.0)):
        mask = labels == LABELS[name]
        _, components = ndimage.label(mask, FULL)
        assert components == 1, f"{name}: {components} components"
        slices = np.flatnonzero(mask.any(axis=(0, 1)))
        span = (slices[-1] - slices[0] + 1) / mask.shape[2]
        assert span >= min_span, f"{name} spans {span:.2f} of the field of view"
        assert slices[-1] == mask.shape[2] - 1, f"{name} should run out of the top of the field of view"
        area = mask.sum(axis=(0, 1))[slices].mean() * spacing[0] * spacing[1]
        assert area <= max_area_mm2, f"{name}: mean cross-section {area:.0f} mm2"


@pytest.mark.parametrize("seed", [11, 12, None])
def test_every_organ_is_one_connected_piece(seed, fresh_seed):
    phantom = cached_phantom(seed) if seed is not None else generate_phantom(fresh_seed)
    organs = {name: value for name, value in LABELS.items() if name != "body" and name not in MULTI_PIECE}
    may_be_missing = set(STYLES["train"].missing)
    for name, value in organs.items():
        _, pieces = ndimage.label(phantom.labels == value, FULL)
        assert pieces == 1 or (pieces == 0 and name in may_be_missing), f"{name}: {pieces} pieces"
    _, pieces = ndimage.label(phantom.labels > 0, FULL)
    assert pieces == 1, f"the body envelope: {pieces} pieces"  # (label 1 alone may hold enclosed pockets)


def test_cord_lies_in_a_bony_canal(case):
    cord = case.labels == LABELS["spinal_cord"]
    ring = ndimage.binary_dilation(cord, FULL, iterations=max(1, int(np.ceil(12.0 / case.spacing.min()))))
    bone = case.image > 250
    assert bone[ring & ~cord].mean() > 0.15  # vertebrae around it
    assert np.median(case.image[cord & ~ndimage.binary_dilation(~cord, FULL)]) < 120  # no bone inside


def test_same_seed_same_case_and_different_seeds_differ(case):
    again = generate_phantom(seed=11)
    np.testing.assert_array_equal(again.image, case.image)
    np.testing.assert_array_equal(again.labels, case.labels)
    np.testing.assert_array_equal(again.affine, case.affine)
    other = cached_phantom(12)
    assert other.labels.shape != case.labels.shape or not np.array_equal(other.labels, case.labels)
    assert not np.allclose(world_centroid(other, "liver"), world_centroid(case, "liver"), atol=1.0)


def test_header_orientation_keeps_every_voxel_in_the_same_world_place(fresh_seed):
    stored = [generate_phantom(fresh_seed, orientation=codes) for codes in ("RAS", "PIL", "SLA")]
    assert [nib.aff2axcodes(p.affine) for p in stored] == [("R", "A", "S"), ("P", "I", "L"), ("S", "L", "A")]
    reference_labels, reference_affine = canonical(stored[0], stored[0].labels)
    reference_image, _ = canonical(stored[0], stored[0].image)
    for phantom in stored[1:]:
        labels, affine = canonical(phantom, phantom.labels)
        image, _ = canonical(phantom, phantom.image)
        np.testing.assert_allclose(affine, reference_affine, atol=1e-6)
        np.testing.assert_array_equal(labels, reference_labels)
        np.testing.assert_array_equal(image, reference_image)


@pytest.mark.parametrize("seed", [11, 12, 21, 1, 2, 3])
def test_anatomy_sits_on_the_patients_sides_in_world_ras(seed):
    phantom = cached_phantom(seed)
    c = {name: world_centroid(phantom, name) for name in LABELS}
    x, y, z = 0, 1, 2
    assert c["liver"][x] > c["spleen"][x] + 60  # the liver is on the patient's right: larger world x
    assert c["kidney_right"][x] > c["kidney_left"][x] + 80
    assert c["lung_right"][x] > c["lung_left"][x] + 80
    assert c["hip_right"][x] > c["hip_left"][x] + 120
    assert min(c["lung_left"][z], c["lung_right"][z]) > c["liver"][z] > c["kidney_left"][z] > c["bladder"][z]
    assert c["hip_left"][z] < c["bladder"][z]
    assert c["esophagus"][y] > c["spinal_cord"][y] + 20  # in front of the spine
    assert c["bladder"][y] > c["spinal_cord"][y]
    assert np.all((phantom.spacing >= SPACING_RANGE_MM[0]) & (phantom.spacing <= SPACING_RANGE_MM[1] + 1e-9))
    assert phantom.labels.size <= 8_000_000


def test_spacing_draws_cover_the_range_and_respect_the_voxel_budget(fresh_seed):
    rng = np.random.default_rng(fresh_seed)
    draws = []
    for _ in range(300):
        extent = rng.uniform(50.0, 500.0, 3)
        budget = int(rng.uniform(1e5, 8e6))
        if np.prod(np.ceil(extent / 3.0)) > budget:
            with pytest.raises(SammoeError):
                draw_spacing(rng, extent, budget)
            continue
        spacing = draw_spacing(rng, extent, budget)
        assert np.all(spacing >= 0.7) and np.all(spacing <= 3.0)
        assert np.prod(np.ceil(extent / spacing)) <= budget
        draws.append(spacing)
    draws = np.array(draws)
    assert draws.min() < 0.8 and draws.max() > 2.9
    assert np.mean(np.ptp(draws, axis=1) > 0.5) > 0.3  # mostly anisotropic


def test_fixed_spacing_and_its_voxel_budget():
    phantom = generate_phantom(5, spacing=(3.0, 2.5, 3.0), orientation="RAS")
    np.testing.assert_allclose(phantom.spacing, [3.0, 2.5, 3.0])
    with pytest.raises(SammoeError, match="max_voxels"):
        generate_phantom(5, spacing=(1.0, 1.0, 1.0))
    with pytest.raises(SammoeError, match="orientation"):
        generate_phantom(5, orientation="RAR")
    with pytest.raises(SammoeError, match="contrast"):
        generate_phantom(5, contrast="pet")


def test_ct_intensities_are_hounsfield_like(case):
    def median(name):
        mask = ndimage.binary_erosion(case.labels == LABELS[name], FULL)
        return float(np.median(case.image[mask]))

    assert median("lung_left") < -700 and median("lung_right") < -700
    assert 20 < median("liver") < 110 and 20 < median("spleen") < 100
    assert median("aorta") > 100
    assert median("bladder") < median("liver")
    assert median("hip_left") > 250
    assert case.image.min() >= -1024


def test_mr_mode_is_non_negative_with_its_own_tissue_order():
    mr = cached_phantom(21, "mr")
    ct = cached_phantom(21)
    np.testing.assert_array_equal(mr.labels, ct.labels)  # same anatomy, other contrast
    assert mr.image.dtype == np.float32 and mr.image.min() >= 0.0

    def median(phantom, name):
        return float(np.median(phantom.image[phantom.labels == LABELS[name]]))

    assert median(mr, "bladder") > median(mr, "liver")  # fluid bright in MR ...
    assert median(ct, "bladder") < median(ct, "liver")  # ... darker than liver in CT
    assert median(mr, "lung_left") < 0.2 * median(mr, "bladder")


def test_case_seeds_are_derived_from_dataset_seed_and_index():
    seeds = {phantom_case_seed(s, i) for s in range(5) for i in range(50)}
    assert len(seeds) == 250
    assert phantom_case_seed(3, 7) == phantom_case_seed(3, 7)


def test_written_dataset_reads_back_and_is_replaced_only_with_overwrite(tmp_path):
    from sammoe_core.io.datasets import LabelledDataset

    out = tmp_path / "ds"
    paths = write_phantom_dataset(out, n=2, seed=4, progress=False)
    dataset = LabelledDataset(out)
    assert dataset.cases == ["phantom_0000", "phantom_0001"] and paths[1] == dataset.image_path("phantom_0001")
    assert dataset.modality == "ct" and dataset.classes["body"] == tuple(range(1, max(LABEL_NAMES) + 1))
    assert dataset.tissue_path("phantom_0001") is not None  # what image synthesis draws intensities from
    assert json.loads((out / "dataset.json").read_text())["generator"]["case_seeds"][
        "phantom_0001"
    ] == phantom_case_seed(4, 1)
    image, labels = dataset.load("phantom_0001")
    expected = generate_phantom(phantom_case_seed(4, 1))
    np.testing.assert_array_equal(labels.array, expected.labels)
    np.testing.assert_allclose(image.affine, expected.affine, atol=1e-4)
    np.testing.assert_array_equal(image.array, np.rint(expected.image).astype(np.int16))
    envelope = dataset.target_mask(labels.array, "body")
    assert envelope.sum() == np.count_nonzero(expected.labels)

    with pytest.raises(SammoeError, match="not empty"):
        write_phantom_dataset(out, n=1, seed=5, progress=False)
    (out / "notes.txt").write_text("kept")
    write_phantom_dataset(out, n=1, seed=5, progress=False, overwrite=True)
    assert LabelledDataset(out).cases == ["phantom_0000"]  # the stale second case is gone
    assert (out / "notes.txt").read_text() == "kept"
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temporary files left


def test_cli_writes_a_dataset_and_refuses_a_non_empty_folder(tmp_path):
    runner = CliRunner()
    out = tmp_path / "ds"
    result = runner.invoke(main, ["phantoms", str(out), "--n", "1", "--seed", "9", "--contrast", "mr", "--quiet"])
    assert result.exit_code == 0, result.output
    spec = json.loads((out / "dataset.json").read_text())
    assert spec["modality"] == "mr" and spec["labels"]["esophagus"] == 11
    assert [p.name for p in (out / "labels").iterdir()] == ["phantom_0000.nii.gz"]
    again = runner.invoke(main, ["phantoms", str(out), "--n", "1", "--seed", "9"])
    assert again.exit_code == 2
    assert again.output.strip() == f"Error: {out}: folder is not empty (pass --overwrite to replace the dataset in it)"
    bad = runner.invoke(main, ["phantoms", str(tmp_path / "x"), "--n", "0", "--seed", "1"])
    assert bad.exit_code == 2 and not (tmp_path / "x").exists()


def test_the_new_structures_are_labelled_and_the_heldout_style_differs():
    """Stomach, pancreas, vertebrae, IVC, heart, trachea, muscles, bowel, ribs and pelvis carry their
    own labels; the held-out configuration deforms the anatomy and images it otherwise."""
    train = cached_phantom(11)
    counts = np.bincount(train.labels.ravel(), minlength=max(LABEL_NAMES) + 1)
    for name in (
        "stomach",
        "pancreas",
        "vertebrae",
        "ivc",
        "heart",
        "trachea",
        "autochthon",
        "iliopsoas",
        "bowel",
        "ribs",
        "pelvis",
    ):
        assert counts[LABELS[name]] > 100, name
    assert train.tissue is not None and train.tissue.shape == train.labels.shape
    held = generate_phantom(11, style="heldout")
    assert held.style == "heldout"
    assert STYLES["heldout"].deform_mm[0] > STYLES["train"].deform_mm[1]  # deformations beyond training's
    aorta_train = np.median(train.image[train.labels == LABELS["aorta"]])
    aorta_held = np.median(held.image[held.labels == LABELS["aorta"]])
    assert aorta_train > 120 and aorta_held < 90  # contrast-enhanced vs non-contrast protocol


def test_the_displacement_field_moves_structures_smoothly_within_its_amplitude():
    from sammoe_core.phantoms.deformation import deform, displacement_field

    rng = np.random.default_rng(0)
    spacing = np.array([2.0, 2.0, 3.0])
    field = displacement_field((60, 50, 40), spacing, 9.0, 60.0, rng)
    moved_mm = np.sqrt(sum((f * s) ** 2 for f, s in zip(field, spacing)))
    assert 3.0 < moved_mm.max() <= 9.0 * np.sqrt(3) + 1e-3
    assert np.abs(np.diff(field[0], axis=0)).max() < 0.5  # smooth: neighbours move alike
    labels = np.zeros((60, 50, 40), np.uint8)
    labels[20:40, 15:35, 10:30] = 7
    (warped,) = deform([labels], field)
    assert set(np.unique(warped)) == {0, 7} and warped.dtype == np.uint8
    assert 0 < np.mean(warped != labels) < 0.1
