"""Tissue classes and how a tissue map becomes a CT- or MR-like image.

CT: Hounsfield-like means per tissue with per-case jitter (a contrast-enhanced venous/arterial
look: aorta ~200 HU, kidney cortex ~150 HU), partial-volume blur, Gaussian noise.
MR: a T2-weighted-like, non-negative ordering (fluid and fat bright, air, cortical bone and fast
arterial flow dark), partial-volume blur, a smooth multiplicative bias field, Rician noise.

The ``heldout`` protocol (the held-out generator style) images the same tissues otherwise:
non-contrast CT (blood, kidneys and the liver near their native 30-60 HU) with more noise and
blur, and a T1-weighted-like MR (fat bright, fluid dark). No training data uses it.
"""

from __future__ import annotations

from enum import IntEnum
from typing import cast

import numpy as np


class Tissue(IntEnum):
    AIR = 0
    LUNG = 1
    FAT = 2
    MUSCLE = 3
    SOFT = 4
    LIVER = 5
    SPLEEN = 6
    KIDNEY_CORTEX = 7
    KIDNEY_MEDULLA = 8
    URINE = 9
    ARTERIAL_BLOOD = 10
    VENOUS_BLOOD = 11
    CORTICAL_BONE = 12
    MARROW = 13
    CARTILAGE = 14
    CSF = 15
    CORD = 16
    ESOPHAGUS_WALL = 17
    FLUID = 18
    FECES = 19
    TABLE_SHELL = 20
    TABLE_FOAM = 21
    PANCREAS = 22
    BILE = 23
    MYOCARDIUM = 24
    HEART_BLOOD = 25
    GREY_MATTER = 26
    WHITE_MATTER = 27


# (mean, per-case standard deviation of the mean)
CT_HU: dict[Tissue, tuple[float, float]] = {
    Tissue.AIR: (-1000, 0),
    Tissue.LUNG: (-850, 30),
    Tissue.FAT: (-100, 12),
    Tissue.MUSCLE: (45, 6),
    Tissue.SOFT: (35, 6),
    Tissue.LIVER: (60, 10),
    Tissue.SPLEEN: (50, 8),
    Tissue.KIDNEY_CORTEX: (150, 25),
    Tissue.KIDNEY_MEDULLA: (40, 10),
    Tissue.URINE: (10, 4),
    Tissue.ARTERIAL_BLOOD: (200, 40),
    Tissue.VENOUS_BLOOD: (130, 25),
    Tissue.CORTICAL_BONE: (900, 80),
    Tissue.MARROW: (300, 50),
    Tissue.CARTILAGE: (90, 12),
    Tissue.CSF: (10, 4),
    Tissue.CORD: (35, 5),
    Tissue.ESOPHAGUS_WALL: (40, 6),
    Tissue.FLUID: (15, 6),
    Tissue.FECES: (-250, 60),
    Tissue.TABLE_SHELL: (250, 50),
    Tissue.TABLE_FOAM: (-900, 30),
    Tissue.PANCREAS: (45, 10),
    Tissue.BILE: (10, 5),
    Tissue.MYOCARDIUM: (45, 8),
    Tissue.HEART_BLOOD: (180, 40),
    Tissue.GREY_MATTER: (40, 4),
    Tissue.WHITE_MATTER: (28, 4),
}

MR_VALUES: dict[Tissue, tuple[float, float]] = {
    Tissue.AIR: (0, 0),
    Tissue.LUNG: (30, 8),
    Tissue.FAT: (800, 60),
    Tissue.MUSCLE: (200, 20),
    Tissue.SOFT: (300, 30),
    Tissue.LIVER: (250, 25),
    Tissue.SPLEEN: (450, 40),
    Tissue.KIDNEY_CORTEX: (500, 40),
    Tissue.KIDNEY_MEDULLA: (650, 50),
    Tissue.URINE: (950, 50),
    Tissue.ARTERIAL_BLOOD: (80, 25),
    Tissue.VENOUS_BLOOD: (350, 50),
    Tissue.CORTICAL_BONE: (20, 8),
    Tissue.MARROW: (600, 50),
    Tissue.CARTILAGE: (400, 40),
    Tissue.CSF: (900, 50),
    Tissue.CORD: (350, 30),
    Tissue.ESOPHAGUS_WALL: (280, 30),
    Tissue.FLUID: (850, 50),
    Tissue.FECES: (250, 50),
    Tissue.TABLE_SHELL: (0, 0),
    Tissue.TABLE_FOAM: (0, 0),
    Tissue.PANCREAS: (280, 30),
    Tissue.BILE: (950, 50),
    Tissue.MYOCARDIUM: (200, 20),
    Tissue.HEART_BLOOD: (100, 40),
    Tissue.GREY_MATTER: (600, 50),
    Tissue.WHITE_MATTER: (450, 40),
}


# The held-out protocol's changes to the tables above.
CT_NON_CONTRAST: dict[Tissue, tuple[float, float]] = {
    Tissue.ARTERIAL_BLOOD: (42, 5),
    Tissue.VENOUS_BLOOD: (40, 5),
    Tissue.HEART_BLOOD: (42, 5),
    Tissue.KIDNEY_CORTEX: (32, 5),
    Tissue.KIDNEY_MEDULLA: (28, 5),
    Tissue.LIVER: (58, 8),
    Tissue.SPLEEN: (47, 6),
    Tissue.PANCREAS: (40, 8),
}
MR_T1: dict[Tissue, tuple[float, float]] = {
    Tissue.LUNG: (20, 6),
    Tissue.FAT: (900, 60),
    Tissue.MUSCLE: (350, 30),
    Tissue.SOFT: (400, 40),
    Tissue.LIVER: (520, 40),
    Tissue.SPLEEN: (400, 40),
    Tissue.KIDNEY_CORTEX: (450, 40),
    Tissue.KIDNEY_MEDULLA: (300, 30),
    Tissue.URINE: (120, 30),
    Tissue.ARTERIAL_BLOOD: (60, 20),
    Tissue.VENOUS_BLOOD: (200, 50),
    Tissue.CORTICAL_BONE: (30, 8),
    Tissue.MARROW: (700, 60),
    Tissue.CARTILAGE: (300, 30),
    Tissue.CSF: (150, 30),
    Tissue.CORD: (450, 30),
    Tissue.ESOPHAGUS_WALL: (380, 30),
    Tissue.FLUID: (150, 30),
    Tissue.FECES: (300, 60),
    Tissue.PANCREAS: (550, 40),
    Tissue.BILE: (130, 30),
    Tissue.MYOCARDIUM: (380, 30),
    Tissue.HEART_BLOOD: (80, 30),
    Tissue.GREY_MATTER: (450, 30),
    Tissue.WHITE_MATTER: (600, 30),
}


def draw_intensity_table(rng: np.random.Generator, contrast: str, protocol: str = "standard") -> np.ndarray:
    """This case's mean intensity per tissue class (index = :class:`Tissue` value)."""
    table = dict(CT_HU if contrast == "ct" else MR_VALUES)
    if protocol == "heldout":
        table.update(CT_NON_CONTRAST if contrast == "ct" else MR_T1)
    means = np.array([table[t][0] for t in Tissue], dtype=np.float64)
    jitter = np.array([table[t][1] for t in Tissue], dtype=np.float64)
    values = means + jitter * rng.standard_normal(len(means))
    if contrast == "mr":
        values = np.maximum(values, 0.0)
    return values.astype(np.float32)


def form_image(tissue: np.ndarray, contrast: str, rng: np.random.Generator, protocol: str = "standard") -> np.ndarray:
    """The image of a canonical tissue map: intensities, blur, (bias field,) noise; float32."""
    from scipy import ndimage

    heldout = protocol == "heldout"
    image: np.ndarray = draw_intensity_table(rng, contrast, protocol)[tissue]  # (indexing by uint8 beats take)
    sigma_voxels = rng.uniform(0.6, 1.0, size=3) if heldout else rng.uniform(0.3, 0.6, size=3)
    image = ndimage.gaussian_filter(image, sigma_voxels, mode="nearest", truncate=2.0)
    if contrast == "ct":
        image += _gaussian_noise(rng, image.shape, rng.uniform(25.0, 45.0) if heldout else rng.uniform(8.0, 30.0))
        np.maximum(image, np.float32(-1024.0), out=image)
        return image
    image *= _bias_field(rng, image.shape)
    noise_sd = rng.uniform(0.01, 0.04) * 1000.0
    image += _gaussian_noise(rng, image.shape, noise_sd)
    imaginary = _gaussian_noise(rng, image.shape, noise_sd)
    image *= image
    imaginary *= imaginary
    image += imaginary
    return cast(np.ndarray, np.sqrt(image, out=image))


def _gaussian_noise(rng: np.random.Generator, shape: tuple[int, ...], sd: float) -> np.ndarray:
    noise = np.empty(shape, dtype=np.float32)
    rng.standard_normal(dtype=np.float32, out=noise)
    noise *= np.float32(sd)
    return noise


def _bias_field(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """A smooth multiplicative field, a product of one quadratic exponential per axis (about ±30%)."""
    field = np.ones((1, 1, 1), dtype=np.float32)
    for dim, n in enumerate(shape):
        position = np.linspace(-1.0, 1.0, n)
        linear, quadratic = rng.normal(0.0, 0.12, size=2)
        factor = np.exp(linear * position + quadratic * position**2).astype(np.float32)
        axis_shape = [1, 1, 1]
        axis_shape[dim] = n
        field = field * factor.reshape(axis_shape)
    return field
