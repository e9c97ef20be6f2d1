"""Training crops from labelled datasets, prepared along the same path as segmentation.

Each case is resampled once onto the model lattice (the input's closest-RAS axes at the model
spacing, :class:`~sammoe_core.io.volumes.Lattice`, with the same :func:`~sammoe_core.io.volumes.resample`
segmentation uses: linear for the image, nearest for labels) and cached as ``.npy`` files,
memory-mapped afterwards, with a random subset of each class's voxels. A dataset's optional
``tissues/`` maps (tissue classes on the image grid, as the phantoms write them) are cached the
same way. A sample picks a case, a class and a target voxel, cuts the 128³ crop around it
(constant 0 outside the volume), augments it with MONAI (random affine, flips, occasional
elastic deformation) and then either synthesises the image from the label and tissue maps
(``synthesis=True``: :mod:`.synthesis`, domain randomisation) or augments the stored intensities
(bias field for MR, scale/shift/noise). It is normalised with
:func:`~sammoe_core.segmentation.intensity.normalize_crop` (CT clamp, z-score over voxels > 0). The first
click is the target voxel nearest the crop centre half of the time (inference centres the crop
on the user's click), else a uniformly random target voxel (the official rule).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from sammoe_core.errors import SammoeError
from sammoe_core.files.atomic import atomic_output
from sammoe_core.files.hashing import sha256_file
from sammoe_core.io.datasets import LabelledDataset
from sammoe_core.io.volumes import Lattice, as_volume, input_extent, resample
from sammoe_core.segmentation.intensity import Modality, normalize_crop
from sammoe_core.segmentation.preprocessing import Preprocessing

if TYPE_CHECKING:
    from monai.transforms import Compose, Rand3DElasticd, RandBiasFieldd

MIN_TARGET_VOXELS = 300
ELASTIC_PROB = 0.02
_VOXELS_PER_CLASS = 4000


@dataclass
class PreparedCase:
    """One case on the model lattice: image and labels (memory-mapped) and sample voxels."""

    name: str
    modality: Modality
    image: np.ndarray
    labels: np.ndarray
    class_voxels: dict[str, np.ndarray]  # class -> (N, 3) lattice voxel indices inside it
    class_values: dict[str, tuple[int, ...]]  # class -> label values forming it
    content_key: str = ""  # digest of the case's files and the spacing (same files, same key)
    weight: float = 1.0  # sampling weight of each of this case's (case, class) pairs
    tissues: np.ndarray | None = None  # tissue classes on the lattice (memory-mapped), if the dataset has them


def to_model_lattice(
    image_in: Any, labels_in: Any, spacing_mm: float, tissues_in: Any = None
) -> tuple[np.ndarray, ...]:
    """Image (float16: HU to 0.5) and labels (uint8 where they fit: the cache stays small) and
    tissues, if given, resampled onto the
    closest-RAS lattice at ``spacing_mm`` covering the input (Volumes, paths or nibabel images)."""
    image, labels = as_volume(image_in), as_volume(labels_in)
    lattice = Lattice.anchored(image.affine, image.affine[:3, 3], spacing_mm)
    to_input = np.linalg.inv(image.affine) @ lattice.affine
    lo, hi = input_extent(image.shape, np.linalg.inv(to_input))
    start = np.floor(lo + 0.5).astype(int)
    shape = cast(tuple[int, int, int], tuple(int(n) for n in np.floor(hi + 0.5).astype(int) - start))
    img = resample(torch.from_numpy(image.array), to_input, shape, start, "linear").numpy()
    lab = resample(torch.from_numpy(labels.array), to_input, shape, start, "nearest").numpy()
    lab = np.rint(lab)
    out = [img.astype(np.float16), lab.astype(np.uint8 if lab.max(initial=0) < 256 else np.uint16)]
    if tissues_in is not None:
        tis = resample(torch.from_numpy(as_volume(tissues_in).array), to_input, shape, start, "nearest").numpy()
        out.append(np.rint(tis).astype(np.uint8))
    return tuple(out)


def case_array_path(cache_dir: str | Path, content_key: str, part: str) -> Path:
    """Where :func:`prepare_dataset` keeps a case's ``image`` or ``labels`` on the model lattice."""
    return Path(cache_dir) / f"{content_key}.{part}.npy"


def prepare_dataset(
    root: str | Path,
    cache_dir: str | Path,
    preprocessing: Preprocessing,
    classes: list[str] | None = None,
    seed: int = 0,
) -> list[PreparedCase]:
    """Resample every case of a dataset once (cached by file content and spacing); index classes."""
    ds = LabelledDataset(root)
    wanted = list(ds.classes) if classes is None else list(classes)
    unknown = [c for c in wanted if c not in ds.classes]
    if unknown:
        raise SammoeError(f"{root}: unknown classes {unknown}; dataset has {sorted(ds.classes)}")
    cache = Path(cache_dir)
    out = []
    for case in ds.cases:
        tissue_path = ds.tissue_path(case)
        ident = f"{sha256_file(ds.image_path(case))}|{sha256_file(ds.label_path(case))}|{preprocessing.spacing_mm}"
        if tissue_path is not None:
            ident += f"|{sha256_file(tissue_path)}"
        key = hashlib.sha256(ident.encode()).hexdigest()[:20]
        parts = ("image", "labels", "tissues") if tissue_path is not None else ("image", "labels")
        paths = {part: case_array_path(cache, key, part) for part in parts}
        if not all(p.exists() for p in paths.values()):
            image_vol, labels_vol = ds.load(case)  # the checked reader: CRC, header, finite values
            tissues_vol = ds.load_tissues(case) if tissue_path is not None else None
            arrays = dict(zip(parts, to_model_lattice(image_vol, labels_vol, preprocessing.spacing_mm, tissues_vol)))
            cache.mkdir(parents=True, exist_ok=True)  # only once there is something to keep
            for part, arr in arrays.items():
                with atomic_output(paths[part], overwrite=True) as tmp:
                    np.save(tmp, arr)
        image = np.load(paths["image"], mmap_mode="r")
        labels = np.load(paths["labels"], mmap_mode="r")
        tissues = np.load(paths["tissues"], mmap_mode="r") if "tissues" in paths else None
        voxels = _class_voxels(
            cache / f"{key}.voxels-{seed}.npz", labels, {n: ds.classes[n] for n in wanted}, seed, key
        )
        out.append(
            PreparedCase(
                case,
                ds.modality,
                image,
                labels,
                voxels,
                {n: tuple(ds.classes[n]) for n in voxels},
                key,
                tissues=tissues,
            )
        )
    return out


def _class_voxels(
    path: Path, labels: np.ndarray, classes: dict[str, tuple[int, ...]], seed: int, key: str
) -> dict[str, np.ndarray]:
    """Up to a few thousand random voxels of each class present (cached per case and seed; each
    class draws from its own generator, so the picks do not depend on what is cached already).

    The label map is sorted once (a stable radix sort of the flat labels); each class's voxels are
    then the union of its values' runs, in ascending voxel order."""
    cached = dict(np.load(path)) if path.exists() else {}
    todo = [name for name in classes if name not in cached]
    if todo:
        flat = np.asarray(labels).ravel()
        order = np.argsort(flat, kind="stable")
        ends = np.cumsum(np.bincount(flat))
        starts = ends - np.bincount(flat)
        for name in todo:
            runs = [order[starts[v] : ends[v]] for v in classes[name] if v < ends.size]
            idx = np.sort(np.concatenate(runs)) if len(runs) > 1 else (runs[0] if runs else np.zeros(0, np.int64))
            if idx.size >= MIN_TARGET_VOXELS:
                rng = np.random.default_rng([seed, int(key[:8], 16), zlib.crc32(name.encode())])
                pick = rng.choice(idx, size=min(_VOXELS_PER_CLASS, idx.size), replace=False)
                cached[name] = np.stack(np.unravel_index(pick, labels.shape), axis=1).astype(np.int32)
            else:
                cached[name] = np.zeros((0, 3), dtype=np.int32)
        with atomic_output(path, overwrite=True) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **cached)
    return {name: cached[name] for name in classes if len(cached[name])}


def crop_around(array: np.ndarray, centre: np.ndarray, size: int, fill: float = 0) -> np.ndarray:
    """The size³ block of ``array`` whose voxel ``size // 2`` is ``centre``, padded with ``fill``."""
    start = np.asarray(centre, dtype=int) - size // 2
    out = np.full((size,) * 3, fill, dtype=array.dtype)
    lo = np.maximum(start, 0)
    hi = np.minimum(start + size, array.shape)
    if np.any(hi <= lo):
        return out
    d_lo, d_hi = lo - start, hi - start
    out[d_lo[0] : d_hi[0], d_lo[1] : d_hi[1], d_lo[2] : d_hi[2]] = array[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    return out


def cut_crop(case: PreparedCase, centre: np.ndarray, size: int, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw image crop (S, S, S) and boolean target crop centred on a lattice voxel."""
    image = torch.from_numpy(crop_around(case.image, centre, size, 0.0).astype(np.float32))
    target = torch.from_numpy(np.isin(crop_around(case.labels, centre, size, 0), case.class_values[name]))
    return image, target


def _augmenters(seed: int) -> tuple[Compose, Rand3DElasticd, RandBiasFieldd, Compose]:
    from monai.transforms import (
        Compose,
        Rand3DElasticd,
        RandAffined,
        RandAxisFlipd,
        RandBiasFieldd,
        RandGaussianNoised,
        RandScaleIntensityd,
        RandShiftIntensityd,
    )

    spatial = Compose(
        [
            RandAffined(
                keys=("image", "label"),
                prob=0.3,
                rotate_range=(0.26, 0.26, 0.26),
                scale_range=(0.15, 0.15, 0.15),
                mode=("bilinear", "nearest"),
                padding_mode="zeros",
            ),
            RandAxisFlipd(keys=("image", "label"), prob=0.5),
        ]
    )
    # Elastic deformation costs seconds per 128³ crop (and MONAI's transform resamples even when
    # it draws "no"), so the sampler decides with its own draw and calls it with prob=1.
    elastic = Rand3DElasticd(
        keys=("image", "label"),
        prob=1.0,
        sigma_range=(6, 9),
        magnitude_range=(40, 120),
        mode=("bilinear", "nearest"),
        padding_mode="zeros",
    )
    bias = RandBiasFieldd(keys=("image",), prob=0.4, coeff_range=(0.1, 0.4))
    intensity = Compose(
        [
            RandScaleIntensityd(keys=("image",), factors=0.1, prob=0.5),
            RandShiftIntensityd(keys=("image",), offsets=0.1, prob=0.5),
            RandGaussianNoised(keys=("image",), std=0.05, prob=0.3),
        ]
    )
    for i, t in enumerate((spatial, elastic, bias, intensity)):
        t.set_random_state(seed + i)
    return spatial, elastic, bias, intensity


def _spatial(d: dict[str, torch.Tensor], rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """The spatial part of the augmentation on an image and its maps (nearest for the maps)."""
    from monai.transforms import Rand3DElasticd, RandAffined, RandAxisFlipd

    keys = tuple(d)
    modes = tuple("bilinear" if k == "image" else "nearest" for k in keys)
    seed = int(rng.integers(2**31))
    affine = RandAffined(
        keys=keys,
        prob=0.3,
        rotate_range=(0.26, 0.26, 0.26),
        scale_range=(0.15, 0.15, 0.15),
        mode=modes,
        padding_mode="zeros",
    )
    flip = RandAxisFlipd(keys=keys, prob=0.5)
    affine.set_random_state(seed)
    flip.set_random_state(seed + 1)
    data = cast(Mapping[Hashable, torch.Tensor], d)  # MONAI types its dictionary transforms on Hashable keys
    out = flip(cast(Mapping[Hashable, torch.Tensor], affine(data)))
    if rng.random() < ELASTIC_PROB:
        elastic = Rand3DElasticd(
            keys=keys, prob=1.0, sigma_range=(6, 9), magnitude_range=(40, 120), mode=modes, padding_mode="zeros"
        )
        elastic.set_random_state(seed + 2)
        out = elastic(out)
    return cast(dict[str, torch.Tensor], out)


class CropSampler:
    """Draws augmented training crops; deterministic given the seed passed to :meth:`sample`."""

    def __init__(
        self, cases: list[PreparedCase], preprocessing: Preprocessing, augment: bool = True, synthesis: bool = False
    ) -> None:
        self.cases = [c for c in cases if c.class_voxels]
        if not self.cases:
            raise SammoeError("no case of the training data holds any of the requested classes")
        self.pre = preprocessing
        self.augment = augment
        self.synthesis = synthesis
        self.pairs = [(i, name) for i, c in enumerate(self.cases) for name in c.class_voxels]
        w = np.array([self.cases[i].weight for i, _ in self.pairs], dtype=np.float64)
        self.weights = w / w.sum()

    def sample(self, seed: int) -> dict[str, torch.Tensor]:
        if self.synthesis:
            return self._synthesised(seed)
        rng = np.random.default_rng(seed)
        s = self.pre.crop_size
        augment = _augmenters(int(rng.integers(2**31))) if self.augment else None
        for _ in range(20):
            ci, name = self.pairs[rng.choice(len(self.pairs), p=self.weights)]
            case = self.cases[ci]
            voxels = case.class_voxels[name]
            centre = voxels[rng.integers(len(voxels))] + np.rint(rng.normal(0, s / 16, size=3)).astype(int)
            image, target = cut_crop(case, centre, s, name)
            if augment is not None:
                d = augment[0]({"image": image[None], "label": target.float()[None]})
                if rng.random() < ELASTIC_PROB:
                    d = augment[1](d)
                if case.modality == "mr":
                    d = augment[2](d)
                image, target = torch.as_tensor(d["image"][0]).float(), torch.as_tensor(d["label"][0]) > 0.5
            if int(target.sum()) >= MIN_TARGET_VOXELS // 2:
                break
        image = normalize_crop(image, case.modality, self.pre)
        if augment is not None:
            image = torch.as_tensor(augment[3]({"image": image[None]})["image"][0]).float()
        return {
            "image": image.contiguous()[None],
            "target": target.float()[None],
            "first_click": torch.from_numpy(self._first_click(target.numpy(), rng)),
        }

    def _synthesised(self, seed: int) -> dict[str, torch.Tensor]:
        """A crop whose image is synthesised from its label (and tissue) maps."""
        from sammoe_core.training.synthesis import synthesize

        rng = np.random.default_rng(seed)
        s = self.pre.crop_size
        for _ in range(20):
            ci, name = self.pairs[rng.choice(len(self.pairs), p=self.weights)]
            case = self.cases[ci]
            voxels = case.class_voxels[name]
            centre = voxels[rng.integers(len(voxels))] + np.rint(rng.normal(0, s / 16, size=3)).astype(int)
            image = torch.from_numpy(crop_around(case.image, centre, s, 0.0).astype(np.float32))
            labels = torch.from_numpy(crop_around(case.labels, centre, s, 0).astype(np.float32))
            tissues = None
            if case.tissues is not None:
                tissues = torch.from_numpy(crop_around(case.tissues, centre, s, 0).astype(np.float32))
            if self.augment:
                d = {"image": image[None], "label": labels[None]}
                if tissues is not None:
                    d["tissue"] = tissues[None]
                d = _spatial(d, rng)
                image, labels = torch.as_tensor(d["image"][0]).float(), torch.as_tensor(d["label"][0])
                tissues = torch.as_tensor(d["tissue"][0]) if tissues is not None else None
            labels = torch.round(labels).long()
            tissues = torch.round(tissues).long() if tissues is not None else None
            target = torch.isin(labels, torch.tensor(case.class_values[name]))
            if int(target.sum()) >= MIN_TARGET_VOXELS // 2:
                break
        keep = np.argwhere(target.numpy())
        keep_voxel = keep[rng.integers(len(keep))] if len(keep) else np.array([s // 2] * 3)
        result = synthesize(labels, tissues, image, case.modality, keep_voxel, rng)
        target = target & result.inside
        image = normalize_crop(result.image, result.modality, self.pre)
        return {
            "image": image.contiguous()[None],
            "target": target.float()[None],
            "first_click": torch.from_numpy(self._first_click(target.numpy(), rng)),
        }

    @staticmethod
    def _first_click(target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        idx = np.argwhere(target)
        if len(idx) == 0:
            return np.array([target.shape[0] // 2] * 3, dtype=np.int64)
        if rng.random() < 0.5:
            centre = np.array(target.shape) // 2
            return cast(np.ndarray, idx[np.argmin(((idx - centre) ** 2).sum(1))].astype(np.int64))
        return cast(np.ndarray, idx[rng.integers(len(idx))].astype(np.int64))
