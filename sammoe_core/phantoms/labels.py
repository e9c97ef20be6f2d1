"""The phantoms' label values: fixed, in this order from 1, shared by generator, writer and docs."""

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
)
SPECIFIC_STRUCTURES: tuple[str, ...] = ("spinal_cord", "esophagus", "hip_left", "hip_right")


def dataset_label_classes() -> dict[str, int | list[int]]:
    """The ``labels`` entry of a phantom ``dataset.json``.

    "body" is the whole envelope (the union of every label); every other class is its own value.
    """
    classes: dict[str, int | list[int]] = {"background": 0, "body": sorted(LABEL_NAMES)}
    classes.update({name: value for value, name in LABEL_NAMES.items() if name != "body"})
    return classes
