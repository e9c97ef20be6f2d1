"""The labelled-dataset reader: layout, classes and regions, loading, and its error messages."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from sammoe_core.errors import SammoeError
from sammoe_core.io.datasets import LabelledDataset


def write_case(root, case, shape=(6, 5, 4), label_shape=None, label_affine=None):
    rng = np.random.default_rng(len(case))
    affine = np.diag([1.5, 2.0, 3.0, 1.0])
    image = rng.normal(size=shape).astype(np.float32)
    labels = rng.integers(0, 4, size=label_shape or shape).astype(np.uint8)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(image, affine), root / "images" / f"{case}.nii.gz")
    nib.save(
        nib.Nifti1Image(labels, affine if label_affine is None else label_affine),
        root / "labels" / f"{case}.nii.gz",
    )
    return labels


def write_spec(root, **overrides):
    spec = {"name": "toy", "modality": "mr", "labels": {"background": 0, "a": 1, "b": 2, "ab": [1, 2]}}
    spec.update(overrides)
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset.json").write_text(json.dumps(spec))


def test_reads_layout_classes_cases_and_masks(tmp_path):
    write_spec(tmp_path, extra_field={"kept": True})
    labels = write_case(tmp_path, "case_b")
    write_case(tmp_path, "case_a")
    (tmp_path / "images" / ".case_c.nii.gz.123.part.nii.gz").write_bytes(b"")  # an interrupted write
    dataset = LabelledDataset(tmp_path)
    assert dataset.name == "toy" and dataset.modality == "mr"
    assert dataset.classes == {"a": (1,), "b": (2,), "ab": (1, 2)}
    assert dataset.cases == ["case_a", "case_b"]
    image, label_image = dataset.load("case_b")
    assert image.shape == label_image.shape == (6, 5, 4)
    loaded = label_image.array
    np.testing.assert_array_equal(loaded, labels)
    np.testing.assert_array_equal(dataset.target_mask(loaded, "ab"), (labels == 1) | (labels == 2))
    np.testing.assert_array_equal(dataset.target_mask(loaded, "b"), labels == 2)


def test_missing_dataset_json(tmp_path):
    with pytest.raises(SammoeError, match=r"dataset\.json: missing"):
        LabelledDataset(tmp_path)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"modality": "pet"}, "modality"),
        ({"labels": {"a": 1}}, "background"),
        ({"labels": {"background": 0, "a": []}}, "no label values"),
        ({"labels": {"background": 0, "a": [0, 1]}}, "background value 0"),
        ({"labels": {"background": 0, "a": "1"}}, "labels"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_dataset_json(tmp_path, overrides, message):
    write_spec(tmp_path, **overrides)
    write_case(tmp_path, "c")
    with pytest.raises(SammoeError, match=message) as error:
        LabelledDataset(tmp_path)
    assert str(error.value).startswith(str(tmp_path / "dataset.json"))


def test_case_without_label_file(tmp_path):
    write_spec(tmp_path)
    write_case(tmp_path, "c1")
    write_case(tmp_path, "c2")
    (tmp_path / "labels" / "c2.nii.gz").unlink()
    with pytest.raises(SammoeError, match="c2.nii.gz: no label file") as error:
        LabelledDataset(tmp_path)
    assert str(error.value).endswith("(1 case(s) without labels: c2)")


def test_label_file_without_image_and_missing_folder(tmp_path):
    write_spec(tmp_path)
    write_case(tmp_path, "c1")
    (tmp_path / "images" / "c1.nii.gz").rename(tmp_path / "images" / "other.nii.gz")
    with pytest.raises(SammoeError):
        LabelledDataset(tmp_path)
    (tmp_path / "images" / "other.nii.gz").unlink()
    (tmp_path / "images").rmdir()
    with pytest.raises(SammoeError, match="images: missing folder"):
        LabelledDataset(tmp_path)


SHIFTED = np.diag([1.5, 2.0, 3.0, 1.0])
SHIFTED[0, 3] = 1.0


@pytest.mark.parametrize("mismatch", [{"label_shape": (6, 5, 3)}, {"label_affine": SHIFTED}])
def test_label_grid_must_match_its_image(tmp_path, mismatch):
    write_spec(tmp_path)
    write_case(tmp_path, "c", **mismatch)
    dataset = LabelledDataset(tmp_path)
    with pytest.raises(SammoeError, match="grid differs from its image"):
        dataset.load("c")


def test_unknown_class_and_case(tmp_path):
    write_spec(tmp_path)
    write_case(tmp_path, "c")
    dataset = LabelledDataset(tmp_path)
    with pytest.raises(SammoeError, match="unknown class 'liver'.*classes: a, b, ab"):
        dataset.target_mask(np.zeros((2, 2, 2), np.uint8), "liver")
    with pytest.raises(SammoeError, match="no case 'd'"):
        dataset.load("d")


def test_image_must_be_3d(tmp_path):
    write_spec(tmp_path)
    write_case(tmp_path, "c")
    nib.save(nib.Nifti1Image(np.zeros((6, 5, 4, 2), np.float32), np.eye(4)), tmp_path / "images" / "c.nii.gz")
    with pytest.raises(SammoeError, match="4D data"):
        LabelledDataset(tmp_path).load("c")


def test_datasets_are_read_through_the_checked_reader(tmp_path):
    """Before: plain nib.load skipped the gzip CRC, so retrain-gate trained on a corrupt file."""
    import gzip

    write_spec(tmp_path)
    write_case(tmp_path, "c")
    path = tmp_path / "images" / "c.nii.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    packed = bytearray(gzip.compress(bytes(raw)))
    packed[-8] ^= 0xFF  # the CRC no longer matches the data
    path.write_bytes(bytes(packed))
    with pytest.raises(SammoeError, match="corrupt gzip data|CRC"):
        LabelledDataset(tmp_path).load("c")
