"""Image synthesis from label maps: anatomy decides the image, the stored intensities do not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sammoe_core.phantoms.tissues import Tissue
from sammoe_core.training.synthesis import synthesize


def _maps(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A 32³ crop: air, fat around a liver block and an aorta tube; labels and tissues."""
    labels = torch.zeros(32, 32, 32, dtype=torch.long)
    tissues = torch.full((32, 32, 32), int(Tissue.AIR), dtype=torch.long)
    tissues[4:28, 4:28, 4:28] = int(Tissue.FAT)
    labels[4:28, 4:28, 4:28] = 1
    tissues[8:20, 8:20, 8:24] = int(Tissue.LIVER)
    labels[8:20, 8:20, 8:24] = 4
    tissues[22:26, 22:26, 4:28] = int(Tissue.ARTERIAL_BLOOD)
    labels[22:26, 22:26, 4:28] = 9
    return labels, tissues


def test_the_stored_image_does_not_change_a_synthesised_one(fresh_seed):
    labels, tissues = _maps(fresh_seed)
    keep = np.array([12, 12, 12])
    one = torch.rand(32, 32, 32) * 1000
    other = torch.rand(32, 32, 32) * 1000
    for style in ("ct", "random"):
        a = synthesize(labels, tissues, one, "ct", keep, np.random.default_rng(fresh_seed), style=style)
        b = synthesize(labels, tissues, other, "ct", keep, np.random.default_rng(fresh_seed), style=style)
        assert a.style == style and torch.equal(a.image, b.image)


def test_ct_style_gives_hounsfield_units_per_tissue(fresh_seed):
    labels, tissues = _maps(fresh_seed)
    result = synthesize(
        labels,
        tissues,
        torch.zeros(32, 32, 32),
        "ct",
        np.array([12, 12, 12]),
        np.random.default_rng(fresh_seed),
        style="ct",
        field_of_view=False,
    )
    image = result.image
    assert result.modality == "ct" and bool(result.inside.all())
    air = float(image[tissues == int(Tissue.AIR)].median())
    fat = float(image[tissues == int(Tissue.FAT)].median())
    liver = float(image[tissues == int(Tissue.LIVER)].median())
    # partial volumes (blur, thick slices) move the medians of this small phantom, never the order
    assert air < -800 and air < fat - 400 and fat < 0 and fat + 40 < liver < 250, (air, fat, liver)


def test_random_style_separates_labels_and_varies_between_draws(fresh_seed):
    labels, tissues = _maps(fresh_seed)
    means = []
    for k in range(2):
        result = synthesize(
            labels,
            None,
            torch.zeros(32, 32, 32),
            "mr",
            np.array([12, 12, 12]),
            np.random.default_rng([fresh_seed, k]),
            style="random",
            field_of_view=False,
        )
        assert result.modality == "mr" and float(result.image.min()) >= 0
        means.append([float(result.image[labels == v].mean()) for v in (0, 1, 4, 9)])
    assert means[0] != means[1]  # every draw gives the structures other intensities


def test_a_fixed_style_needs_what_it_draws_from():
    labels, _ = _maps(0)
    with pytest.raises(ValueError, match="'ct' needs tissues"):
        synthesize(labels, None, torch.zeros(32, 32, 32), "ct", np.zeros(3, int), np.random.default_rng(0), style="ct")
    with pytest.raises(ValueError, match="style 'mri'"):
        synthesize(labels, None, torch.zeros(32, 32, 32), "ct", np.zeros(3, int), np.random.default_rng(0), style="mri")
