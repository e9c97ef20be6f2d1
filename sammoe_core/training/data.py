"""Training crops from labelled datasets, cut exactly the way segmentation cuts its crops.

Each case is decoded once into an uncompressed ``.npy`` cache (memory-mapped afterwards), with a
random subset of each class's voxels. A sample picks a case, a class and a target voxel, anchors
the model lattice there (the input's closest-RAS axes at the model spacing, as
:func:`sammoe_core.segment.segment` does around a click, plus a small random shift), resamples
the crop and its labels with the same :func:`~sammoe_core.volumes.resample`, augments with MONAI
(affine, flips, occasional elastic deformation, bias field for MR), normalises with
:func:`~sammoe_core.intensity.normalize_crop` (CT clamp, z-score over voxels > 0), and jitters
intensities. The first click is the target voxel nearest the crop centre half of the time
(inference centres the crop on the user's click), else a uniformly random target voxel (the
official rule).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..datasets import LabelledDataset
from ..hashing import sha256_file
from ..intensity import normalize_crop
from ..preprocessing import Preprocessing
from ..volumes import Lattice, as_volume, resample

MIN_TARGET_VOXELS = 300
_VOXELS_PER_CLASS = 4000


@dataclass
class PreparedCase:
    """One case: image and labels (memory-mapped, input grid), affine, and sample voxels."""

    name: str
    modality: str
    image: np.ndarray
    labels: np.ndarray
    affine: np.ndarray
    class_voxels: dict[str, np.ndarray]  # class -> (N, 3) input voxel indices inside it
    class_values: dict[str, tuple[int, ...]]  # class -> label values forming it
    weight: float = 1.0  # sampling weight of each of this case's (case, class) pairs


def prepare_dataset(
    root: str | Path,
    cache_dir: str | Path,
    classes: list[str] | None = None,
    seed: int = 0,
) -> list[PreparedCase]:
    """Decode every case of a dataset once (cached by file content) and index its classes."""
    ds = LabelledDataset(root)
    wanted = list(ds.classes) if classes is None else list(classes)
    unknown = [c for c in wanted if c not in ds.classes]
    if unknown:
        raise ValueError(f"{root}: unknown classes {unknown}; dataset has {sorted(ds.classes)}")
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for case in ds.cases:
        image_nii, labels_nii = ds.load(case)
        key = hashlib.sha256(f"{sha256_file(image_nii.get_filename())}|{sha256_file(labels_nii.get_filename())}".encode()).hexdigest()[:20]
        paths = {part: cache / f"{key}.{part}.npy" for part in ("image", "labels", "affine")}
        if not all(p.exists() for p in paths.values()):
            image = as_volume(image_nii)
            labels = as_volume(labels_nii)
            for part, arr in (("image", image.array), ("labels", labels.array.astype(np.uint16)), ("affine", image.affine)):
                tmp = paths[part].with_suffix(".part.npy")
                np.save(tmp, arr)
                tmp.replace(paths[part])
        image = np.load(paths["image"], mmap_mode="r")
        labels = np.load(paths["labels"], mmap_mode="r")
        voxels = {}
        for name in wanted:
            idx = np.flatnonzero(np.isin(labels, ds.classes[name]))
            if idx.size < MIN_TARGET_VOXELS:
                continue
            pick = rng.choice(idx, size=min(_VOXELS_PER_CLASS, idx.size), replace=False)
            voxels[name] = np.stack(np.unravel_index(pick, labels.shape), axis=1).astype(np.int32)
        out.append(
            PreparedCase(case, ds.modality, image, labels, np.load(paths["affine"]), voxels,
                         {n: tuple(ds.classes[n]) for n in voxels})
        )
    return out


def cut_crop(
    case: PreparedCase, anchor_voxel: np.ndarray, preprocessing: Preprocessing, name: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw image crop (S, S, S) and boolean target crop centred on an input voxel."""
    size = preprocessing.crop_size
    anchor_mm = case.affine[:3, :3] @ np.asarray(anchor_voxel, dtype=np.float64) + case.affine[:3, 3]
    lattice = Lattice.anchored(case.affine, anchor_mm, preprocessing.spacing_mm)
    to_input = np.linalg.inv(case.affine) @ lattice.affine
    start = np.full(3, -(size // 2))
    image = resample(torch.from_numpy(np.asarray(case.image)), to_input, (size,) * 3, start, "linear")
    labels = resample(torch.from_numpy(np.asarray(case.labels, dtype=np.float32)), to_input, (size,) * 3, start, "nearest")
    target = torch.from_numpy(np.isin(labels.round().to(torch.int64).numpy(), case.class_values[name]))
    return image, target


def _augmenter(seed: int):
    from monai.transforms import Compose, Rand3DElasticd, RandAffined, RandAxisFlipd, RandBiasFieldd

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

    def __init__(self, cases: list[PreparedCase], preprocessing: Preprocessing, augment: bool = True) -> None:
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
            jitter = rng.normal(0, s / 16, size=3) / np.linalg.norm(case.affine[:3, :3], axis=0) * self.pre.spacing_mm
            image, target = cut_crop(case, voxels[rng.integers(len(voxels))] + jitter, self.pre, name)
            if self.augment:
                image, target = self._augment(image, target, case.modality, int(rng.integers(2**31)))
            if int(target.sum()) >= MIN_TARGET_VOXELS // 2:
                break
        image = normalize_crop(image, case.modality, self.pre)
        if self.augment:
            image = image * float(rng.uniform(0.9, 1.1)) + float(rng.uniform(-0.1, 0.1))
            noise = rng.normal(0, rng.uniform(0, 0.05), tuple(image.shape)).astype(np.float32)
            image = image + torch.from_numpy(noise)
        return {
            "image": image.float().contiguous()[None],
            "target": target.float()[None],
            "first_click": torch.from_numpy(self._first_click(target.numpy(), rng)),
        }

    def _augment(self, image: torch.Tensor, target: torch.Tensor, modality: str, seed: int):
        spatial, bias = _augmenter(seed)
        d = spatial({"image": image[None], "label": target.float()[None]})
        if modality == "mr":
            d = bias(d)
        return torch.as_tensor(d["image"][0]).float(), torch.as_tensor(d["label"][0]) > 0.5

    @staticmethod
    def _first_click(target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        idx = np.argwhere(target)
        if len(idx) == 0:
            return np.array([target.shape[0] // 2] * 3, dtype=np.int64)
        if rng.random() < 0.5:
            centre = np.array(target.shape) // 2
            return idx[np.argmin(((idx - centre) ** 2).sum(1))].astype(np.int64)
        return idx[rng.integers(len(idx))].astype(np.int64)
