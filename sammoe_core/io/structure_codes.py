"""Coded concepts for target names: the SNOMED CT codes a DICOM Segmentation gives each segment.

A DICOM SEG describes every segment by a *category* (DICOM CID 7150) and a *type* (CID 7151),
optionally with a laterality modifier (CID 244). The codes are never written out here: the table
below names entries of the code tables that pydicom ships (``pydicom.sr.codedict``), and the
codes are looked up there, so every value is the one the DICOM standard lists.

A name is matched after lower-casing and turning spaces and hyphens into underscores; a
trailing ``_left`` / ``_right`` (or ``_l`` / ``_r``) adds the laterality, and TotalSegmentator's
``vertebrae_L1``-style names map to the single vertebra. A name the table does not know gets
the generic category and type "Tissue", so a SEG can always be written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# normalised name -> (CID 7150 category keyword, CID 7151 type keyword)
_ANATOMY = "AnatomicalStructure"
STRUCTURES: dict[str, tuple[str, str]] = {
    "adrenal_gland": (_ANATOMY, "AdrenalGland"),
    "aorta": (_ANATOMY, "Aorta"),
    "autochthon": (_ANATOMY, "ErectorSpinaeMuscle"),
    "bladder": (_ANATOMY, "Bladder"),
    "body": (_ANATOMY, "EntireBody"),
    "brain": (_ANATOMY, "Brain"),
    "cerebellum": (_ANATOMY, "Cerebellum"),
    "colon": (_ANATOMY, "Colon"),
    "costal_cartilages": (_ANATOMY, "CostalCartilage"),
    "duodenum": (_ANATOMY, "Duodenum"),
    "esophagus": (_ANATOMY, "Esophagus"),
    "femur": (_ANATOMY, "Femur"),
    "gallbladder": (_ANATOMY, "Gallbladder"),
    "gray_matter": ("Tissue", "GrayMatter"),
    "head": (_ANATOMY, "Head"),
    "heart": (_ANATOMY, "Heart"),
    "hip": (_ANATOMY, "Hip"),
    "humerus": (_ANATOMY, "Humerus"),
    "iliopsoas": ("Tissue", "MuscleTissue"),
    "ivc": (_ANATOMY, "InferiorVenaCava"),
    "kidney": (_ANATOMY, "Kidney"),
    "large_intestine": (_ANATOMY, "LargeIntestine"),
    "liver": (_ANATOMY, "Liver"),
    "lung": (_ANATOMY, "Lung"),
    "pancreas": (_ANATOMY, "Pancreas"),
    "pelvis": (_ANATOMY, "Pelvis"),
    "portal_vein": (_ANATOMY, "PortalVein"),
    "prostate": (_ANATOMY, "Prostate"),
    "ribs": (_ANATOMY, "Rib"),
    "sacrum": (_ANATOMY, "Sacrum"),
    "skull": (_ANATOMY, "Skull"),
    "small_bowel": (_ANATOMY, "SmallIntestine"),
    "spinal_cord": (_ANATOMY, "SpinalCord"),
    "spine": (_ANATOMY, "Spine"),
    "spleen": (_ANATOMY, "Spleen"),
    "splenic_vein": (_ANATOMY, "SplenicVein"),
    "stomach": (_ANATOMY, "Stomach"),
    "thyroid_gland": (_ANATOMY, "Thyroid"),
    "trachea": (_ANATOMY, "Trachea"),
    "vertebrae": (_ANATOMY, "Vertebra"),
    "white_matter": ("Tissue", "WhiteMatter"),
}
# other spellings of the same structures
ALIASES: dict[str, str] = {
    "adrenal": "adrenal_gland",
    "autochthonous_muscle": "autochthon",
    "brain_gray_matter": "gray_matter",
    "cartilage_costal": "costal_cartilages",
    "costal_cartilage": "costal_cartilages",
    "entire_body": "body",
    "grey_matter": "gray_matter",
    "hips": "hip",
    "inferior_vena_cava": "ivc",
    "kidneys": "kidney",
    "lungs": "lung",
    "oesophagus": "esophagus",
    "rib": "ribs",
    "small_intestine": "small_bowel",
    "thyroid": "thyroid_gland",
    "urinary_bladder": "bladder",
    "vena_cava_inferior": "ivc",
    "vertebra": "vertebrae",
}
GENERIC = ("Tissue", "Tissue")
_SIDES = {"left": "Left", "l": "Left", "right": "Right", "r": "Right"}
_SIDE_AFTER = re.compile(r"^(?P<base>.+)_(?P<side>left|right|l|r)$")
_SIDE_BEFORE = re.compile(r"^(?P<side>left|right)_(?P<base>.+)$")
_SINGLE_VERTEBRA = re.compile(r"^vertebrae?_?([ctl])(\d{1,2})$")


@dataclass(frozen=True)
class StructureCode:
    """The coded concepts of one segment (pydicom ``Code`` objects) and whether the name was known."""

    category: Any
    type: Any
    laterality: Any | None
    known: bool

    def to_dict(self) -> dict[str, Any]:
        def code(c: Any) -> dict[str, str] | None:
            return None if c is None else {"value": c.value, "scheme": c.scheme_designator, "meaning": c.meaning}

        return {
            "category": code(self.category),
            "type": code(self.type),
            "laterality": code(self.laterality),
            "known": self.known,
        }


def normalise(name: str) -> str:
    """Lower case, with runs of spaces, hyphens and dots as one underscore."""
    return re.sub(r"[\s.\-_]+", "_", name.strip().lower()).strip("_")


def _codes() -> Any:
    from pydicom.sr.codedict import codes

    return codes


def _split_side(name: str) -> tuple[str, str | None]:
    """``kidney_left`` / ``left_kidney`` / ``kidney_l`` -> (``kidney``, ``Left``)."""
    match = _SIDE_AFTER.match(name) or _SIDE_BEFORE.match(name)
    if match is None:
        return name, None
    return match.group("base"), _SIDES[match.group("side")]


def _type_keyword(base: str) -> tuple[str, str] | None:
    base = ALIASES.get(base, base)
    if base in STRUCTURES:
        return STRUCTURES[base]
    vertebra = _SINGLE_VERTEBRA.match(base)
    if vertebra:
        keyword = f"{vertebra.group(1).upper()}{int(vertebra.group(2))}Vertebra"
        if keyword in _codes().cid7151.dir():
            return _ANATOMY, keyword
    return None


def structure_code(name: str) -> StructureCode:
    """The category, type and laterality codes for a target name (generic "Tissue" when unknown)."""
    codes = _codes()
    normalised = normalise(name)
    found = _type_keyword(normalised)
    side = None
    if found is None:
        base, side = _split_side(normalised)
        found = _type_keyword(base)
    if found is None:
        category, kind = GENERIC
        return StructureCode(getattr(codes.cid7150, category), getattr(codes.cid7151, kind), None, False)
    category, kind = found
    laterality = None if side is None else getattr(codes.cid244, side)
    return StructureCode(getattr(codes.cid7150, category), getattr(codes.cid7151, kind), laterality, True)
