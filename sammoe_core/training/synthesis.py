"""Training images that only anatomy can explain: domain-randomised synthesis from label maps.

After SynthSeg (Billot et al., Medical Image Analysis 2023): a network trained on images
synthesised from label maps with random contrasts, resolutions and artefacts segments real scans
of any contrast, because the one thing that stays constant across its training images is the
anatomy. Each crop gets one *style*:

- ``random``: every generation class (a label, split by tissue where a tissue map exists, or by
  intensity bins of the stored image otherwise) draws its own mean and spread; some classes are
  mixtures (a smooth field switches between two intensities); then a bias field, gamma,
  sometimes contrast inversion. Normalised as MR.
- ``ct``: Hounsfield units per tissue with wide random offsets, a random contrast phase
  (non-contrast, arterial, portal venous: vessels, kidneys and organs enhance accordingly),
  organ-specific shifts and real CT noise levels. Normalised as CT. Needs a tissue map.
- ``own``: the stored image itself (the generator's or the scanner's intensities), with mild
  intensity augmentation: one style among many, not the only one.

Every style then goes through blur, noise, and with some probability a thick-slice / low
resolution simulation (averaging along an axis and resampling back) and a truncated field of
view (part of the crop outside the scan: zero, as segmentation pads).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
import torch.nn.functional as F

from sammoe_core.phantoms.tissues import CT_HU, Tissue

if TYPE_CHECKING:
    from sammoe_core.segmentation.intensity import Modality

STYLE_PROBABILITIES = {"random": 0.45, "ct": 0.35, "own": 0.20}
THICK_SLICE_PROB = 0.35
TRUNCATE_PROB = 0.3
INVERT_PROB = 0.15

# Mean HU of the tissues that enhance, per contrast phase: (low, high) drawn uniformly.
_PHASES: dict[str, dict[Tissue, tuple[float, float]]] = {
    "native": {
        Tissue.ARTERIAL_BLOOD: (35, 50),
        Tissue.VENOUS_BLOOD: (35, 50),
        Tissue.HEART_BLOOD: (35, 50),
        Tissue.KIDNEY_CORTEX: (25, 40),
        Tissue.KIDNEY_MEDULLA: (25, 40),
        Tissue.LIVER: (45, 65),
        Tissue.SPLEEN: (40, 55),
        Tissue.PANCREAS: (35, 50),
    },
    "arterial": {
        Tissue.ARTERIAL_BLOOD: (200, 450),
        Tissue.VENOUS_BLOOD: (50, 110),
        Tissue.HEART_BLOOD: (150, 400),
        Tissue.KIDNEY_CORTEX: (140, 260),
        Tissue.KIDNEY_MEDULLA: (50, 100),
        Tissue.LIVER: (60, 85),
        Tissue.SPLEEN: (80, 140),
        Tissue.PANCREAS: (90, 140),
    },
    "portal": {
        Tissue.ARTERIAL_BLOOD: (120, 230),
        Tissue.VENOUS_BLOOD: (120, 200),
        Tissue.HEART_BLOOD: (110, 200),
        Tissue.KIDNEY_CORTEX: (140, 220),
        Tissue.KIDNEY_MEDULLA: (110, 190),
        Tissue.LIVER: (85, 135),
        Tissue.SPLEEN: (95, 140),
        Tissue.PANCREAS: (70, 120),
    },
}
_PHASE_PROBABILITIES = {"native": 0.3, "arterial": 0.2, "portal": 0.5}
_AIR_LIKE = (Tissue.AIR, Tissue.TABLE_FOAM)


@dataclass
class SynthesisResult:
    image: torch.Tensor  # (S, S, S) float32, raw intensities (HU for "ct")
    modality: Modality  # how to normalise it: "ct" or "mr"
    style: str
    inside: torch.Tensor  # (S, S, S) bool: inside the simulated field of view


def generation_classes(labels: torch.Tensor, tissues: torch.Tensor | None, image: torch.Tensor) -> torch.Tensor:
    """Compact ids of the classes intensities are drawn for: (label, tissue) pairs, or without a
    tissue map (label, intensity bin of the stored image) with four global quantile bins."""
    if tissues is not None:
        key = labels.long() * 64 + tissues.long()
    else:
        flat = image.reshape(-1)
        sample = flat[:: max(1, flat.numel() // 65536)].float()
        edges = torch.quantile(sample, torch.tensor([0.25, 0.5, 0.75]))
        key = labels.long() * 8 + torch.bucketize(image.float(), edges)
    return cast(torch.Tensor, torch.unique(key, return_inverse=True)[1])


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], coarse: int) -> torch.Tensor:
    """A smooth random field in about [-1, 1] (trilinear upsampling of a coarse Gaussian grid)."""
    grid = torch.from_numpy(rng.standard_normal((1, 1, coarse, coarse, coarse)).astype(np.float32))
    field = F.interpolate(grid, size=shape, mode="trilinear", align_corners=True)[0, 0]
    return field / field.abs().max().clamp_min(1e-6)


def _blur(image: torch.Tensor, sigma: np.ndarray) -> torch.Tensor:
    """Separable Gaussian blur with per-axis sigma (voxels)."""
    out = image[None, None]
    for axis, s in enumerate(sigma):
        if s < 0.2:
            continue
        radius = max(1, int(np.ceil(2.5 * s)))
        x = torch.arange(-radius, radius + 1, dtype=torch.float32)
        kernel = torch.exp(-0.5 * (x / float(s)) ** 2)
        kernel = kernel / kernel.sum()
        shape = [1, 1, 1, 1, 1]
        shape[2 + axis] = kernel.numel()
        pad = [0, 0, 0, 0, 0, 0]
        pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = radius
        out = F.conv3d(F.pad(out, pad, mode="replicate"), kernel.reshape(shape))
    return out[0, 0]


def _thick_slices(image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Average along one axis (slices 2-5x thicker) or two (low in-plane resolution), then
    resample back linearly: anisotropic and thick-slice acquisitions."""
    shape = image.shape
    factors = [1, 1, 1]
    axis = int(rng.choice(3, p=[0.2, 0.2, 0.6]))
    factors[axis] = int(rng.integers(2, 6))
    if rng.random() < 0.25:
        other = int(rng.choice([a for a in range(3) if a != axis]))
        factors[other] = int(rng.integers(2, 3))
    low = F.avg_pool3d(image[None, None], kernel_size=factors, stride=factors, ceil_mode=True)
    return F.interpolate(low, size=shape, mode="trilinear", align_corners=False)[0, 0]


def _field_of_view(shape: tuple[int, ...], keep: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """A slab along one axis (mostly z: few-slice scans) that contains voxel ``keep``."""
    inside = torch.ones(shape, dtype=torch.bool)
    axis = int(rng.choice(3, p=[0.2, 0.2, 0.6]))
    n = shape[axis]
    thickness = int(rng.integers(max(8, n // 8), n))
    start = int(np.clip(keep[axis] - rng.integers(0, thickness), 0, n - thickness))
    index = [slice(None)] * 3
    index[axis] = slice(0, start)
    inside[tuple(index)] = False
    index[axis] = slice(start + thickness, n)
    inside[tuple(index)] = False
    return inside


def _random_style(classes: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    n = int(classes.max()) + 1
    means = torch.from_numpy(rng.uniform(0.0, 255.0, n).astype(np.float32))
    spreads = torch.from_numpy(rng.uniform(1.0, 25.0, n).astype(np.float32))
    image = means[classes] + spreads[classes] * torch.randn(classes.shape, generator=_torch_gen(rng))
    mixed = rng.random(n) < 0.3
    if mixed.any():
        second = torch.from_numpy(rng.uniform(0.0, 255.0, n).astype(np.float32))
        switch = _smooth_field(rng, tuple(classes.shape), int(rng.integers(4, 10))) > 0
        where = torch.from_numpy(mixed)[classes] & switch
        image = torch.where(where, second[classes] + spreads[classes] * 0.5, image)
    image = image.clamp_min(0.0)
    if rng.random() < 0.5:  # multiplicative bias field
        image = image * torch.exp(float(rng.uniform(0.1, 0.5)) * _smooth_field(rng, tuple(classes.shape), 4))
    if rng.random() < 0.5:  # gamma
        top = image.max().clamp_min(1e-6)
        image = (image / top) ** float(np.exp(rng.normal(0.0, 0.35))) * top
    if rng.random() < INVERT_PROB:
        image = image.max() - image
    return image


def _ct_style(labels: torch.Tensor, tissues: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    phase = str(rng.choice(list(_PHASE_PROBABILITIES), p=list(_PHASE_PROBABILITIES.values())))
    table = np.zeros(max(int(t) for t in Tissue) + 1, dtype=np.float32)
    offset = rng.normal(0.0, 12.0)  # scanner calibration
    for tissue in Tissue:
        mean, sd = CT_HU[tissue]
        if tissue in _PHASES[phase]:
            mean = rng.uniform(*_PHASES[phase][tissue])
        spread = 0.0 if tissue in _AIR_LIKE else max(2.5 * sd, 10.0)
        table[int(tissue)] = mean + rng.normal(0.0, spread) + (0.0 if tissue in _AIR_LIKE else offset)
    image = torch.from_numpy(table)[tissues.long()]
    # organ-specific shifts: the same tissue differs a little between labelled structures
    key = torch.unique(labels.long() * 64 + tissues.long(), return_inverse=True)[1]
    shift = torch.from_numpy(rng.normal(0.0, 6.0, int(key.max()) + 1).astype(np.float32))
    soft = (image > -200) & (image < 300)
    image = image + torch.where(soft, shift[key], torch.zeros(()))
    # faint low-frequency texture inside tissues
    image = image + float(rng.uniform(0.0, 8.0)) * _smooth_field(rng, tuple(labels.shape), int(rng.integers(6, 14)))
    return image


def _torch_gen(rng: np.random.Generator) -> torch.Generator:
    return torch.Generator().manual_seed(int(rng.integers(2**62)))


def synthesize(
    labels: torch.Tensor,
    tissues: torch.Tensor | None,
    image: torch.Tensor,
    modality: Modality,
    keep: np.ndarray,
    rng: np.random.Generator,
    *,
    style: str | None = None,
    field_of_view: bool = True,
) -> SynthesisResult:
    """One training image for a crop: ``labels`` (S, S, S) int label map, ``tissues`` its tissue
    classes (or None), ``image`` the stored crop (raw intensities), ``modality`` the dataset's,
    ``keep`` a voxel that must stay inside the field of view (the target's). ``style`` fixes the
    style (drawn by :data:`STYLE_PROBABILITIES` when None); ``field_of_view=False`` never
    truncates (whole volumes, whose labels must stay complete)."""
    if style is None:
        styles = {k: v for k, v in STYLE_PROBABILITIES.items() if k != "ct" or tissues is not None}
        names, weights = list(styles), np.array(list(styles.values()))
        style = str(rng.choice(names, p=weights / weights.sum()))
    elif style not in STYLE_PROBABILITIES or (style == "ct" and tissues is None):
        raise ValueError(f"style {style!r}: expected one of {sorted(STYLE_PROBABILITIES)} ('ct' needs tissues)")
    gen = _torch_gen(rng)
    norm: Modality
    if style == "random":
        out, norm = _random_style(generation_classes(labels, tissues, image), rng), "mr"
        noise = float(rng.uniform(0.0, 12.0))
    elif style == "ct" and tissues is not None:
        out, norm = _ct_style(labels, tissues, rng), "ct"
        noise = float(rng.uniform(4.0, 40.0))
    else:
        out, norm = image.float().clone(), modality
        scale = float(np.exp(rng.normal(0.0, 0.08)))
        out = out * scale if norm == "mr" else out + float(rng.normal(0.0, 10.0))
        noise = float(rng.uniform(0.0, 8.0)) if norm == "ct" else float(rng.uniform(0.0, 0.03)) * float(out.std())
    if style != "own":
        out = _blur(out, rng.uniform(0.0, 1.2, 3))
    if rng.random() < THICK_SLICE_PROB:
        out = _thick_slices(out, rng)
    if noise > 0:
        out = out + noise * torch.randn(out.shape, generator=gen)
    if norm == "ct":
        out = out.clamp_min(-1024.0)
    else:
        out = out.clamp_min(0.0)
    inside = torch.ones(out.shape, dtype=torch.bool)
    if field_of_view and rng.random() < TRUNCATE_PROB:
        inside = _field_of_view(tuple(out.shape), keep, rng)
        out = torch.where(inside, out, torch.zeros(()))
    return SynthesisResult(out.contiguous(), norm, style, inside)
