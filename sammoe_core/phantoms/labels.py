"""The phantoms' label values: fixed, in this order from 1, shared by generator, writer and docs.

Values 1-13 are the original set (the first-party experts' calibration sets use them); 14-25
label structures that real scans always contain, so that a click on them is learnt as *that*
structure and not taken for a neighbouring organ.
"""

from __future__ import annotations

LABEL_NAMES: dict[int, str] = {
    1: "body",
    2: "lung_left",
    3: "lung_right",
    4: "liver",
    5: "spleen",
    6: "kidney_left",
    7: "kidney_right",
    8: "bladder",
    9: "aorta",
    10: "spinal_cord",
    11: "esophagus",
    12: "hip_left",
    13: "hip_right",
    14: "stomach",
    15: "pancreas",
    16: "gallbladder",
    17: "vertebrae",
    18: "ivc",
    19: "heart",
    20: "trachea",
    21: "autochthon",
    22: "iliopsoas",
    23: "bowel",
    24: "ribs",
    25: "pelvis",
}
LABELS: dict[str, int] = {name: value for value, name in LABEL_NAMES.items()}

GENERAL_STRUCTURES: tuple[str, ...] = (
    "body",
    "lung_left",
    "lung_right",
    "liver",
    "spleen",
    "kidney_left",
    "kidney_right",
    "bladder",
    "aorta",
    "stomach",
    "pancreas",
    "gallbladder",
    "vertebrae",
    "ivc",
    "heart",
    "trachea",
    "autochthon",
    "iliopsoas",
    "bowel",
    "ribs",
    "pelvis",
)
SPECIFIC_STRUCTURES: tuple[str, ...] = ("spinal_cord", "esophagus", "hip_left", "hip_right")
# Structures made of several pieces by nature (left + right, loops, segments): never reduced to
# their largest piece.
MULTI_PIECE: frozenset[str] = frozenset({"vertebrae", "autochthon", "iliopsoas", "bowel", "ribs", "pelvis", "pancreas"})


def dataset_label_classes() -> dict[str, int | list[int]]:
    """The ``labels`` entry of a phantom ``dataset.json``.

    "body" is the whole envelope (the union of every label); every other class is its own value.
    """
    classes: dict[str, int | list[int]] = {"background": 0, "body": sorted(LABEL_NAMES)}
    classes.update({name: value for value, name in LABEL_NAMES.items() if name != "body"})
    return classes
