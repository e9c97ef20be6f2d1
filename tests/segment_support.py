"""Test support for segmentation: a stand-in CropPredictor with a known answer, and grids.

:class:`EllipsoidPredictor` "segments" an ellipsoid with given radii in millimetres along the
crop's three tensor axes (R, A, S by construction) around the first positive click it receives,
computed in crop voxels at the crop spacing. Its answer is known in world coordinates, so a test
can check where the mask lands in the original file. With no click it returns its mask prompt
(the previous crop's prediction, shifted), like a network that only refines.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sammoe_core.model import get_config
from sammoe_core.segmentation.predictor import CropPrediction
from sammoe_core.segmentation.preprocessing import Preprocessing

LOGIT = 10.0


class EllipsoidPredictor:
    """A CropPredictor whose mask is an ellipsoid (radii in mm per crop axis) around the click."""

    def __init__(
        self,
        radii_mm: tuple[float, float, float] | float,
        crop_size: int = 128,
        box_prompts: bool = False,
        keep_crops: bool = True,
    ):
        self.radii_mm = np.broadcast_to(np.asarray(radii_mm, dtype=np.float64), (3,))
        self.keep_crops = keep_crops
        self.preprocessing = Preprocessing(crop_size=crop_size)
        self.config = get_config("sam-med3d-vit-b-box" if box_prompts else "sam-med3d-vit-b")
        self.crops: list[torch.Tensor] = []
        self.decodes: list[dict] = []

    def encode(self, crop: torch.Tensor) -> int:
        self.crops.append(crop.clone() if self.keep_crops else None)
        return len(self.crops) - 1

    def decode(self, state, points, point_labels, mask_prompt=None, boxes=None, route=None) -> CropPrediction:
        size = self.preprocessing.crop_size
        self.decodes.append(
            {
                "crop": state,
                "points": None if points is None else points[0].clone(),
                "labels": None if point_labels is None else point_labels[0].clone(),
                "mask_prompt": None if mask_prompt is None else mask_prompt.clone(),
                "boxes": None if boxes is None else boxes.clone(),
            }
        )
        if points is None or not bool((point_labels == 1).any()):
            if mask_prompt is None:
                return CropPrediction(torch.full((1, 1, size, size, size), -LOGIT))
            return CropPrediction(mask_prompt.clone(), {"crop": state, "refined": True})
        centre = points[0][point_labels[0] == 1][0].float()
        radii = torch.as_tensor(self.radii_mm / self.preprocessing.spacing_mm, dtype=torch.float32)
        axis = torch.arange(size, dtype=torch.float32)
        inside = (
            ((axis[:, None, None] - centre[0]) / radii[0]) ** 2
            + ((axis[None, :, None] - centre[1]) / radii[1]) ** 2
            + ((axis[None, None, :] - centre[2]) / radii[2]) ** 2
        ) <= 1
        logits = torch.where(inside, LOGIT, -LOGIT)[None, None]
        return CropPrediction(logits, {"crop": state, "clicks": int(points.shape[1])})

    def upsample(self, low_res_logits: torch.Tensor) -> torch.Tensor:
        return low_res_logits

    def describe(self) -> dict:
        return {"predictor": "ellipsoid", "radii_mm": self.radii_mm.tolist()}


def rotation(degrees_z: float, degrees_x: float) -> np.ndarray:
    """Rotation about z then about x (an oblique acquisition)."""
    cz, sz = math.cos(math.radians(degrees_z)), math.sin(math.radians(degrees_z))
    cx, sx = math.cos(math.radians(degrees_x)), math.sin(math.radians(degrees_x))
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    return rx @ rz


def make_affine(directions: np.ndarray, spacing, centre_voxel, centre_mm=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Affine with unit axis ``directions`` (columns), ``spacing``, and ``centre_voxel`` at ``centre_mm``."""
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(directions, dtype=np.float64) * np.asarray(spacing, dtype=np.float64)
    affine[:3, 3] = np.asarray(centre_mm) - affine[:3, :3] @ np.asarray(centre_voxel, dtype=np.float64)
    return affine


def voxel_centres_mm(shape, affine) -> np.ndarray:
    """World RAS mm of every voxel centre, shape (*shape, 3)."""
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).astype(np.float64)
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def write_dicom_series(folder, hounsfield: np.ndarray, affine_ras: np.ndarray, order) -> None:
    """Write a CT series (one file per slice, in the given slice ``order``) with this RAS geometry."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    lps = np.diag([-1.0, -1, 1, 1]) @ affine_ras
    column_spacing, row_spacing = np.linalg.norm(lps[:3, :2], axis=0)
    orientation = np.concatenate([lps[:3, 0] / column_spacing, lps[:3, 1] / row_spacing])
    series = generate_uid()
    for k in order:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID = "CT", series
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in orientation]
        ds.ImagePositionPatient = [f"{v:.6f}" for v in (lps @ [0, 0, k, 1])[:3]]
        ds.PixelSpacing = [f"{row_spacing:.6f}", f"{column_spacing:.6f}"]
        ds.Rows, ds.Columns = hounsfield.shape[1], hounsfield.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = (hounsfield[:, :, k].T + 1024).astype(np.uint16).tobytes()
        ds.save_as(folder / f"slice{(k * 7) % len(order):03d}.dcm", enforce_file_format=True)
