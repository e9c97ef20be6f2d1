"""What the extra outputs cost on a CT-sized series: statistics, one mask per target, DICOM SEG.

``python bench/output_writers.py [--slices 100] [--size 512] [--targets 10]``

Writes a synthetic CT series (``--size``² pixels, ``--slices`` slices, pydicom) to a temporary
folder, reads it with sammoe's reader, makes a label map of ``--targets`` spheres on it (no model:
these are the writers alone) and times ``write_result`` once per output kind, printing one table:
the NIfTI label map and sidecar alone, then with ``statistics=True``, with ``split=True``, and as a
DICOM SEG (``OUT.dcm``), with the size of what each run wrote.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def write_series(folder: Path, size: int, slices: int) -> None:
    """A CT series: one file per slice, 0.8 mm pixels, 1.5 mm slices, with the identifiers scanners write."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    rng = np.random.default_rng(5)
    study, series, frame_of_reference = generate_uid(), generate_uid(), generate_uid()
    for k in range(slices):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame_of_reference
        ds.PatientName, ds.PatientID, ds.Modality = "Bench^Series", "B1", "CT"
        ds.SeriesNumber, ds.InstanceNumber = 2, k + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-200.0, -200.0, 1.5 * k]
        ds.PixelSpacing, ds.SliceThickness = [0.8, 0.8], 1.5
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = rng.integers(900, 1200, (size, size), dtype=np.uint16).tobytes()
        ds.save_as(folder / f"{k:04d}.dcm", enforce_file_format=True)


def spheres(shape: tuple[int, int, int], count: int) -> tuple[object, list[tuple[str, int]]]:
    """A label map with ``count`` disjoint spheres along the first axis, and their (name, label)."""
    import numpy as np

    grid = np.ogrid[: shape[0], : shape[1], : shape[2]]
    label_map = np.zeros(shape, np.uint8)
    radius = min(shape[0] / (2 * count + 1), shape[1] / 4, shape[2] / 2.5)
    for i in range(count):
        centre = ((2 * i + 1.5) * shape[0] / (2 * count + 1), shape[1] / 2, shape[2] / 2)
        inside = sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2
        label_map[inside] = i + 1
    return label_map, [(f"structure_{i + 1}", i + 1) for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--targets", type=int, default=10)
    args = parser.parse_args()

    from sammoe_core.io.outputs import write_result
    from sammoe_core.io.volumes import read_volume
    from sammoe_core.segmentation.intensity import ModalityDecision
    from sammoe_core.segmentation.pipeline import SegmentationResult, TargetResult

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "series"
        folder.mkdir()
        write_series(folder, args.size, args.slices)
        volume = read_volume(folder)
        label_map, segments = spheres(volume.shape, args.targets)
        targets = [TargetResult(n, v, [], None, None, [], False, {}) for n, v in segments]
        result = SegmentationResult(volume, label_map, None, targets, ModalityDecision("ct", "ct", "bench"), {}, {})
        print(f"series {volume.shape[0]} x {volume.shape[1]} x {volume.shape[2]}, {args.targets} targets")
        print(f"{'outputs':<28}{'seconds':>9}{'MB written':>12}")
        runs = [
            ("label map + sidecar", "a.nii.gz", {}),
            ("+ statistics", "b.nii.gz", {"statistics": True}),
            ("+ split (one mask each)", "c.nii.gz", {"split": True}),
            ("DICOM SEG + sidecar", "d.dcm", {}),
        ]
        for title, name, options in runs:
            out = Path(tmp) / "out" / title.replace(" ", "_").replace("+", "plus")
            out.mkdir(parents=True)
            started = time.perf_counter()
            write_result(result, out / name, **options)
            seconds = time.perf_counter() - started
            written = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
            print(f"{title:<28}{seconds:>9.2f}{written:>12.1f}")


if __name__ == "__main__":
    main()
