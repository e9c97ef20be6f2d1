"""One phantom case from a seed: draw the anatomy and pose, choose the grid, paint, image, reorient."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, cast

import numpy as np

from sammoe_core.errors import SammoeError
from sammoe_core.phantoms.anatomy import paint_anatomy
from sammoe_core.phantoms.body import draw_torso
from sammoe_core.phantoms.canvas import Canvas
from sammoe_core.phantoms.labels import LABEL_NAMES
from sammoe_core.phantoms.placement import Grid, Pose, draw_orientation, draw_spacing, reorient, rotation_matrix
from sammoe_core.phantoms.styles import get_style
from sammoe_core.phantoms.tissues import form_image

if TYPE_CHECKING:
    import nibabel as nib

DEFAULT_MAX_VOXELS = 8_000_000


@dataclass
class Phantom:
    """A synthetic torso: image (HU-like for CT), label map and the affine to world RAS+ mm."""

    image: np.ndarray  # float32
    labels: np.ndarray  # uint8, values in label_names (0 = outside the body)
    affine: np.ndarray  # (4, 4) voxel index -> world RAS+ mm
    label_names: dict[int, str] = field(default_factory=lambda: dict(LABEL_NAMES))
    contrast: str = "ct"
    seed: int = 0
    orientation: str = "RAS"  # nibabel axis codes of the stored array axes
    tissue: np.ndarray | None = None  # uint8 tissue classes (intensities.Tissue), same grid
    style: str = "train"

    def __post_init__(self) -> None:
        if self.image.shape != self.labels.shape:
            raise ValueError(f"image {self.image.shape} and labels {self.labels.shape} differ in shape")

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size along each array axis, mm."""
        return cast(np.ndarray, np.linalg.norm(self.affine[:3, :3], axis=0))

    def to_nifti(self) -> tuple[nib.Nifti1Image, nib.Nifti1Image]:
        """The image (stored as int16, rounded like a scanner's output) and the label map."""
        stored = np.clip(np.rint(self.image), -32768, 32767).astype(np.int16)
        return _nifti(stored, self.affine), _nifti(self.labels, self.affine)

    def tissue_nifti(self) -> nib.Nifti1Image:
        """The tissue-class map (what image synthesis for training draws intensities from)."""
        if self.tissue is None:
            raise SammoeError("this phantom carries no tissue map")
        return _nifti(self.tissue, self.affine)


def _nifti(array: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    import nibabel as nib

    image = nib.Nifti1Image(array, affine)
    image.set_qform(affine, code=1)  # scanner coordinates
    image.set_sform(affine, code=1)
    image.header.set_xyzt_units("mm")
    return image


def generate_phantom(
    seed: int,
    contrast: Literal["ct", "mr"] = "ct",
    *,
    spacing: tuple[float, float, float] | None = None,
    orientation: str | None = None,
    max_voxels: int = DEFAULT_MAX_VOXELS,
    style: str = "train",
) -> Phantom:
    """Generate one torso phantom, the same for the same arguments.

    ``spacing`` (mm along world x, y, z) and ``orientation`` (nibabel axis codes of the stored
    axes, e.g. ``"LPS"``) are random when not given; fixing them changes nothing else: the
    anatomy, pose and intensities are drawn from their own streams of ``seed``. ``style`` names a
    generator configuration (:mod:`.styles`): ``"train"`` or the held-out ``"heldout"``.
    """
    if contrast not in ("ct", "mr"):
        raise SammoeError(f"contrast {contrast!r}: expected 'ct' or 'mr'")
    config = get_style(style)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(7)]
    anatomy_rng, pose_rng, view_rng, spacing_rng, orientation_rng, image_rng, variation_rng = streams

    torso = draw_torso(anatomy_rng, config.fat_range)
    pose = _draw_pose(pose_rng)
    lo, hi = pose.world_box(*torso.bounds())
    margin = view_rng.uniform(3.0, 15.0, 3) * [1.0, 1.0, 0.0]
    lo, hi = lo - margin, hi + margin
    lo[1] -= view_rng.uniform(15.0, 45.0)  # room under the back for (part of) the table
    if spacing is None:
        chosen = draw_spacing(spacing_rng, hi - lo, max_voxels)
    else:
        chosen = np.asarray(spacing, dtype=float)
        if chosen.shape != (3,) or np.any(chosen <= 0):
            raise SammoeError(f"spacing {spacing!r}: expected three positive millimetre values")
    grid = Grid.covering(lo, hi, chosen)
    if np.prod(grid.shape) > max_voxels:
        raise SammoeError(f"spacing {tuple(chosen)} gives {np.prod(grid.shape)} voxels (max_voxels={max_voxels})")

    canvas = Canvas(grid, pose)
    paint_anatomy(canvas, torso, anatomy_rng, config, variation_rng)
    image = form_image(canvas.tissue, contrast, image_rng, config.protocol)
    axcodes = (orientation or draw_orientation(orientation_rng)).upper()
    (image, labels, tissue), affine = reorient([image, canvas.labels, canvas.tissue], grid.affine, axcodes)
    return Phantom(
        image=image,
        labels=labels,
        affine=affine,
        contrast=contrast,
        seed=int(seed),
        orientation=axcodes,
        tissue=tissue,
        style=config.name,
    )


def _draw_pose(rng: np.random.Generator) -> Pose:
    """Size (overall and per axis), a small tilt and turn on the table, a table position."""
    scale = rng.uniform(0.85, 1.05) * rng.uniform(0.95, 1.05, 3)
    angles = np.radians(rng.uniform(-1.0, 1.0, 3) * [5.0, 5.0, 8.0])
    origin = np.array([rng.uniform(-40.0, 40.0), rng.uniform(-40.0, 40.0), rng.uniform(-300.0, 300.0)])
    return Pose(rotation=rotation_matrix(angles), scale=scale, origin=origin)
