"""The labelled-dataset layout every sammoe trainer and evaluator reads.

::

    DIR/dataset.json   {"name": str, "modality": "ct" | "mr",
                        "labels": {"background": 0, "<class>": int | [int, ...], ...}}
    DIR/images/<case>.nii.gz
    DIR/labels/<case>.nii.gz     (same grid as the image)
    DIR/tissues/<case>.nii.gz    (optional: tissue classes, same grid; image synthesis for training)

As in nnU-Net, a class may be a *region*: a list of label values whose union is the target
(the phantoms' "body" is every label 1..13). Other keys in dataset.json are kept and ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator

from sammoe_core.errors import SammoeError

if TYPE_CHECKING:
    from sammoe_core.io.volumes import Volume

CASE_SUFFIXES = (".nii.gz", ".nii")
GRID_TOLERANCE_MM = 1e-3


class DatasetSpec(BaseModel):
    """The content of ``dataset.json``."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1)
    modality: Literal["ct", "mr"]
    labels: dict[str, StrictInt | list[StrictInt]]

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, labels: dict[str, int | list[int]]) -> dict[str, int | list[int]]:
        if labels.get("background") != 0:
            raise ValueError('"background" must be label 0')
        for name, value in labels.items():
            values = [value] if isinstance(value, int) else value
            if not values:
                raise ValueError(f"class {name!r} lists no label values")
            if any(v < 0 for v in values):
                raise ValueError(f"class {name!r} has a negative label value")
            if name != "background" and 0 in values:
                raise ValueError(f"class {name!r} includes the background value 0")
        return labels


class LabelledDataset:
    """A folder in the labelled-dataset layout: its classes, its cases, and loading them."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        spec_path = self.root / "dataset.json"
        if not spec_path.is_file():
            raise SammoeError(f"{spec_path}: missing (a labelled dataset needs dataset.json, images/, labels/)")
        try:
            self.spec = DatasetSpec.model_validate_json(spec_path.read_bytes())
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "file"
            raise SammoeError(f"{spec_path}: {where}: {first['msg']}") from None
        self._images = _case_files(self.root / "images")
        self._labels = _case_files(self.root / "labels")
        unlabelled = sorted(set(self._images) - set(self._labels))
        if unlabelled:
            raise SammoeError(
                f"{self._images[unlabelled[0]]}: no label file in {self.root / 'labels'} "
                f"({len(unlabelled)} case(s) without labels: {', '.join(unlabelled[:5])})"
            )
        orphans = sorted(set(self._labels) - set(self._images))
        if orphans:
            raise SammoeError(f"{self._labels[orphans[0]]}: label file without an image in {self.root / 'images'}")

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def modality(self) -> Literal["ct", "mr"]:
        return self.spec.modality

    @property
    def classes(self) -> dict[str, tuple[int, ...]]:
        """Each target class (background excluded) and the label values that make it up."""
        return {
            name: (value,) if isinstance(value, int) else tuple(value)
            for name, value in self.spec.labels.items()
            if name != "background"
        }

    @property
    def cases(self) -> list[str]:
        return sorted(self._images)

    def image_path(self, case: str) -> Path:
        return self._images[self._known(case)]

    def label_path(self, case: str) -> Path:
        return self._labels[self._known(case)]

    def tissue_path(self, case: str) -> Path | None:
        """The case's tissue-class map (``tissues/``), or None when the dataset has none."""
        self._known(case)
        for suffix in CASE_SUFFIXES:
            path = self.root / "tissues" / f"{case}{suffix}"
            if path.is_file():
                return path
        return None

    def load_tissues(self, case: str) -> Volume:
        """The case's tissue map, read like any input and checked to lie on its image's grid."""
        from sammoe_core.io.volumes import read_volume

        path = self.tissue_path(case)
        if path is None:
            raise SammoeError(f"{self.root / 'tissues'}: no tissue map for case {case!r}")
        image, tissues = read_volume(self.image_path(case)), read_volume(path)
        self._same_grid(image, tissues, path)
        return tissues

    def load(self, case: str) -> tuple[Volume, Volume]:
        """The case's image and label map, read through the same checked path as every input
        (gzip CRC, header, voxel budget, finite values) and required to share one grid."""
        from sammoe_core.io.volumes import read_volume

        image_path, label_path = self.image_path(case), self.label_path(case)
        image, labels = read_volume(image_path), read_volume(label_path)
        self._same_grid(image, labels, label_path)
        return image, labels

    def _same_grid(self, image: Volume, other: Volume, path: Path) -> None:
        if image.shape != other.shape or not np.allclose(image.affine, other.affine, atol=GRID_TOLERANCE_MM):
            raise SammoeError(
                f"{path}: grid differs from its image {image.source} "
                f"(shape {other.shape} vs {image.shape}, or a different affine)"
            )

    def target_mask(self, labels_array: np.ndarray, class_name: str) -> np.ndarray:
        """Boolean mask of ``class_name`` (the union of its label values) in a label array."""
        classes = self.classes
        if class_name not in classes:
            raise SammoeError(
                f"{self.root / 'dataset.json'}: unknown class {class_name!r} (classes: {', '.join(classes)})"
            )
        return np.isin(np.asarray(labels_array), classes[class_name])

    def _known(self, case: str) -> str:
        if case not in self._images:
            raise SammoeError(f"{self.root / 'images'}: no case {case!r}")
        return case


def _case_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise SammoeError(f"{folder}: missing folder of the labelled-dataset layout")
    files = {}
    for path in folder.iterdir():
        for suffix in CASE_SUFFIXES:
            if path.name.endswith(suffix) and not path.name.startswith("."):
                files[path.name[: -len(suffix)]] = path
                break
    return files
