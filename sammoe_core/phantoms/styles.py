"""Generator configurations ("styles"): how much the anatomy varies and how a case is imaged.

``train`` is what sammoe's default foundation was trained on. ``heldout`` is a configuration
no training data came from: stronger smooth deformations, more missing organs, fatter and
thinner bodies, and a different imaging protocol (non-contrast CT, or a T1-like MR, with more
noise and blur). Evaluating on ``heldout`` phantoms tests more than other seeds of the same
generator would.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PhantomStyle:
    name: str
    deform_mm: tuple[float, float]  # amplitude range of the smooth random displacement field
    deform_spacing_mm: float  # control-point spacing of that field (its correlation length)
    missing: dict[str, float] = field(default_factory=dict)  # organ -> probability it is absent
    fat_range: tuple[float, float] = (0.05, 0.16)  # subcutaneous fat, fraction of the body radius
    protocol: str = "standard"  # "standard": contrast-enhanced CT / T2-like MR; "heldout": see module


STYLES: dict[str, PhantomStyle] = {
    "train": PhantomStyle(
        name="train",
        deform_mm=(0.0, 9.0),
        deform_spacing_mm=60.0,
        missing={"gallbladder": 0.15, "spleen": 0.04, "kidney_left": 0.03, "kidney_right": 0.03},
    ),
    "heldout": PhantomStyle(
        name="heldout",
        deform_mm=(10.0, 16.0),
        deform_spacing_mm=80.0,
        missing={"gallbladder": 0.4, "spleen": 0.1, "kidney_left": 0.08, "kidney_right": 0.08},
        fat_range=(0.03, 0.22),
        protocol="heldout",
    ),
}


def get_style(name: str) -> PhantomStyle:
    from sammoe_core.errors import SammoeError

    if name not in STYLES:
        raise SammoeError(f"phantom style {name!r}: expected one of {', '.join(STYLES)}")
    return STYLES[name]
