"""Training crops from labelled datasets, prepared the way inference prepares them.

Each case is brought once to canonical RAS at the model's spacing (MONAI Orientation + Spacing,
linear for the image, nearest for labels) and cached as ``.npy`` files, with a random subset of
each class's voxels. A sample then picks a case, a class and a target voxel, cuts the 128³ crop
around it (constant-0 padding; CT clamped first), augments it with MONAI (affine, flips,
occasional elastic, bias field for MR), z-normalises over voxels > 0, and adds intensity jitter.
The first click is the target voxel nearest the crop centre half of the time (inference centres
the crop on the user's click), else a uniformly random target voxel (the official rule).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..datasets import LabelledDataset
from ..preprocessing import Preprocessing

MIN_TARGET_VOXELS = 300
_COORDS_PER_CLASS = 4000


@dataclass
class PreparedCase:
    """One case at the model's spacing in RAS: image and labels (memory-mapped), class voxels."""

    name: str
    modality: str
    image: np.ndarray
    labels: np.ndarray
    class_voxels: dict[str, np.ndarray]  # class -> (N, 3) int voxel indices of that class
    class_values: dict[str, tuple[int, ...]]  # class -> label values forming it
    weight: float = 1.0  # sampling weight of each of this case's (case, class) pairs


def _resample_ras(image_nii, labels_nii, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    from monai.data import MetaTensor
    from monai.transforms import Orientation, Spacing

    def as_meta(nii, dtype):
        arr = np.asanyarray(nii.dataobj).astype(dtype)
        return MetaTensor(torch.from_numpy(arr)[None], affine=torch.as_tensor(nii.affine, dtype=torch.float64))

    orient = Orientation(axcodes="RAS", labels=None)
    img = Spacing(pixdim=spacing, mode="bilinear")(orient(as_meta(image_nii, np.float32)))
    lab = Spacing(pixdim=spacing, mode="nearest")(orient(as_meta(labels_nii, np.float32)))
    return img[0].numpy().astype(np.float32), np.rint(lab[0].numpy()).astype(np.uint16)


def prepare_dataset(
    root: str | Path,
    cache_dir: str | Path,
    preprocessing: Preprocessing,
    classes: list[str] | None = None,
    seed: int = 0,
) -> list[PreparedCase]:
    """Resample every case of a dataset once (cached by file content and spacing)."""
    ds = LabelledDataset(root)
    wanted = list(ds.classes) if classes is None else classes
    unknown = [c for c in wanted if c not in ds.classes]
    if unknown:
        raise ValueError(f"{root}: unknown classes {unknown}; dataset has {sorted(ds.classes)}")
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for case in ds.cases:
        image_nii, labels_nii = ds.load(case)
        key = hashlib.sha256(
            f"{ds.name}|{case}|{preprocessing.spacing_mm}|{image_nii.affine.tobytes().hex()}|{image_nii.shape}".encode()
        ).hexdigest()[:16]
        img_path, lab_path = cache / f"{key}.image.npy", cache / f"{key}.labels.npy"
        if not (img_path.exists() and lab_path.exists()):
            img, lab = _resample_ras(image_nii, labels_nii, preprocessing.spacing_mm)
            np.save(img_path.with_suffix(".tmp.npy"), img)
            np.save(lab_path.with_suffix(".tmp.npy"), lab)
            img_path.with_suffix(".tmp.npy").replace(img_path)
            lab_path.with_suffix(".tmp.npy").replace(lab_path)
        img = np.load(img_path, mmap_mode="r")
        lab = np.load(lab_path, mmap_mode="r")
        voxels = {}
        for name in wanted:
            mask = np.isin(lab, ds.classes[name])
            idx = np.flatnonzero(mask)
            if idx.size < MIN_TARGET_VOXELS:
                continue
            pick = rng.choice(idx, size=min(_COORDS_PER_CLASS, idx.size), replace=False)
            voxels[name] = np.stack(np.unravel_index(pick, lab.shape), axis=1).astype(np.int32)
        out.append(PreparedCase(case, ds.modality, img, lab, voxels, {n: ds.classes[n] for n in voxels}))
    return out


def crop_around(array: np.ndarray, centre: np.ndarray, size: int, fill: float) -> np.ndarray:
    """The size³ block of ``array`` centred on ``centre`` (start = centre - size // 2), padded."""
    start = np.asarray(centre) - size // 2
    out = np.full((size,) * 3, fill, dtype=array.dtype)
    src_lo = np.maximum(start, 0)
    src_hi = np.minimum(start + size, array.shape)
    if np.any(src_hi <= src_lo):
        return out
    dst_lo = src_lo - start
    dst_hi = dst_lo + (src_hi - src_lo)
    out[dst_lo[0]:dst_hi[0], dst_lo[1]:dst_hi[1], dst_lo[2]:dst_hi[2]] = array[
        src_lo[0]:src_hi[0], src_lo[1]:src_hi[1], src_lo[2]:src_hi[2]
    ]
    return out


def zscore_positive(crop: np.ndarray) -> np.ndarray:
    """Official normalisation: mean and (unbiased) std over voxels > 0, applied to every voxel."""
    pos = crop[crop > 0]
    if pos.size < 2:
        return crop.astype(np.float32)
    std = pos.std(ddof=1)
    return ((crop - pos.mean()) / max(std, 1e-8)).astype(np.float32)


def _augmenter(seed: int):
    from monai.transforms import (
        Compose,
        Rand3DElasticd,
        RandAffined,
        RandAxisFlipd,
        RandBiasFieldd,
    )

    spatial = Compose(
        [
            RandAffined(
                keys=("image", "label"), prob=0.5, rotate_range=(0.26, 0.26, 0.26),
                scale_range=(0.15, 0.15, 0.15), mode=("bilinear", "nearest"), padding_mode="zeros",
            ),
            Rand3DElasticd(
                keys=("image", "label"), prob=0.05, sigma_range=(6, 9), magnitude_range=(40, 120),
                mode=("bilinear", "nearest"), padding_mode="zeros",
            ),
            RandAxisFlipd(keys=("image", "label"), prob=0.5),
        ]
    )
    spatial.set_random_state(seed)
    bias = RandBiasFieldd(keys=("image",), prob=0.4, coeff_range=(0.1, 0.4))
    bias.set_random_state(seed + 1)
    return spatial, bias


class CropSampler:
    """Draws augmented training crops; deterministic given the seed passed to :meth:`sample`."""

    def __init__(
        self,
        cases: list[PreparedCase],
        preprocessing: Preprocessing,
        augment: bool = True,
    ) -> None:
        self.cases = [c for c in cases if c.class_voxels]
        if not self.cases:
            raise ValueError("no case holds any of the requested classes")
        self.pre = preprocessing
        self.augment = augment
        self.pairs = [(i, name) for i, c in enumerate(self.cases) for name in c.class_voxels]
        w = np.array([self.cases[i].weight for i, _ in self.pairs], dtype=np.float64)
        self.weights = w / w.sum()

    def sample(self, seed: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng(seed)
        s = self.pre.crop_size
        for _ in range(20):
            ci, name = self.pairs[rng.choice(len(self.pairs), p=self.weights)]
            case = self.cases[ci]
            voxels = case.class_voxels[name]
            centre = voxels[rng.integers(len(voxels))] + rng.integers(-s // 8, s // 8 + 1, size=3)
            image_crop = crop_around(case.image, centre, s, 0.0)
            if case.modality == "ct":  # padding stays 0, as when the official code pads after the clamp
                image_crop = np.clip(image_crop, *self.pre.ct_clip)
            target = np.isin(crop_around(case.labels, centre, s, 0), case.class_values[name])
            if self.augment:
                image_crop, target = self._augment(image_crop, target, case.modality, int(rng.integers(2**31)))
            if target.sum() >= MIN_TARGET_VOXELS // 2:
                break
        image_crop = zscore_positive(image_crop)
        if self.augment:
            image_crop = image_crop * rng.uniform(0.9, 1.1) + rng.uniform(-0.1, 0.1)
            image_crop = image_crop + rng.normal(0, rng.uniform(0, 0.05), image_crop.shape).astype(np.float32)
        first = self._first_click(target, rng)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image_crop, dtype=np.float32))[None],
            "target": torch.from_numpy(target.astype(np.float32))[None],
            "first_click": torch.from_numpy(first),
        }

    def _augment(self, image, target, modality, seed):
        spatial, bias = _augmenter(seed)
        d = spatial({"image": torch.from_numpy(image)[None], "label": torch.from_numpy(target.astype(np.float32))[None]})
        if modality == "mr":
            d = bias(d)
        img = np.asarray(d["image"][0], dtype=np.float32)
        return img, np.asarray(d["label"][0]) > 0.5

    @staticmethod
    def _first_click(target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        idx = np.argwhere(target)
        if len(idx) == 0:
            return np.array([target.shape[0] // 2] * 3, dtype=np.int64)
        if rng.random() < 0.5:
            centre = (np.array(target.shape) - 1) / 2
            return idx[np.argmin(((idx - centre) ** 2).sum(1))].astype(np.int64)
        return idx[rng.integers(len(idx))].astype(np.int64)


def describe_cases(cases: list[PreparedCase]) -> str:
    counts: dict[str, int] = {}
    for c in cases:
        for name in c.class_voxels:
            counts[name] = counts.get(name, 0) + 1
    return json.dumps({"cases": len(cases), "cases_per_class": counts})
