"""A label map as a DICOM Segmentation (highdicom, the optional ``sammoe[dicom]`` extra).

The SEG references the series the label map was made from: the source folder's headers are read
again (no pixel data), checked to describe the very grid of the label map, and handed to
highdicom, which copies the patient and study and references every source instance. Frame
``k`` of the SEG is slice ``k`` of the series in the reader's order (by position along the slice
normal), with pixel ``[row, column]`` = label-map voxel ``[column, row, k]`` (the reader's axis
order, see :mod:`sammoe_core.io.volumes.dicom`). One segment per target, numbered 1, 2, ... in
target order, labelled with the target's name and coded by :mod:`.structure_codes`; empty frames
are left out, as the standard allows (unless all are empty: a SEG needs frames, so all are kept).

Anonymised series sometimes carry empty identifiers. An empty SOP Instance or SOP Class UID is
taken from the file meta information (which holds the same values by the standard); an empty
Study or Series Instance UID cannot be recovered, so the SEG gets one derived from the instance
UIDs (the same for every SEG of that series) and the record says so. Missing patient and study
attributes that the standard lets be empty (name, ID, dates...) are copied as empty, and a missing
slice thickness is taken to be the slice spacing.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sammoe_core import __version__
from sammoe_core.errors import InputError
from sammoe_core.io.structure_codes import structure_code
from sammoe_core.io.volumes.dicom import check_dicom_series, looks_like_dicom

if TYPE_CHECKING:
    from sammoe_core.io.volumes import Volume

SERIES_NUMBER = 300
_ENTITY_UIDS = ("StudyInstanceUID", "SeriesInstanceUID")
# type 2 attributes (present, possibly empty) of the patient and study the SEG copies
_PATIENT_AND_STUDY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "ReferringPhysicianName",
    "AccessionNumber",
)
_FROM_FILE_META = (("SOPInstanceUID", "MediaStorageSOPInstanceUID"), ("SOPClassUID", "MediaStorageSOPClassUID"))


class DicomSegError(InputError):
    """A DICOM SEG that cannot be made from this input."""


def _highdicom() -> Any:
    try:
        import highdicom
    except ImportError:
        raise DicomSegError(
            "writing a DICOM SEG needs highdicom; install it with pip install 'sammoe[dicom]'"
        ) from None
    return highdicom


def dicom_seg_source(input_path: str | Path, output: str | Path) -> Path:
    """The DICOM series folder a ``.dcm`` output will reference; a one-line error for any other
    input, or when highdicom is not installed (both before any work)."""
    folder = Path(input_path)
    if not (folder.is_dir() and any(looks_like_dicom(p) for p in folder.iterdir() if p.is_file())):
        raise DicomSegError(
            f"{output}: a DICOM SEG (.dcm) output needs a DICOM series folder as input, and {input_path} is not one;"
            " write .nii.gz instead"
        )
    _highdicom()
    return folder


def _instance_identifiers(path: Path, ds: Any) -> None:
    """Fill an empty SOP Instance / Class UID from the file meta information (the same values)."""
    meta = getattr(ds, "file_meta", None)
    for tag, meta_tag in _FROM_FILE_META:
        if not str(ds.get(tag, "") or ""):
            value = str(getattr(meta, meta_tag, "") or "") if meta is not None else ""
            if not value:
                raise DicomSegError(f"{path}: no {tag}; a DICOM SEG cannot reference this image")
            setattr(ds, tag, value)


def _derived_entity_uids(pydicom: Any, headers: list[Any]) -> list[str]:
    """Give every header the same derived Study / Series Instance UID where the series has none;
    return the names of those that were made."""
    missing = [tag for tag in _ENTITY_UIDS if not str(headers[0].get(tag, "") or "")]
    instances = sorted(str(ds.SOPInstanceUID) for ds in headers)
    for tag in missing:
        uid = pydicom.uid.generate_uid(entropy_srcs=[tag, *instances])
        for ds in headers:
            setattr(ds, tag, uid)
    return missing


def _source_headers(folder: Path, volume: Volume) -> tuple[list[Any], list[str]]:
    """The series' headers in slice order, identifiers filled in; the entity UIDs that were made."""
    pydicom, affine, ordered = check_dicom_series(folder)
    headers = [pydicom.dcmread(path, stop_before_pixels=True) for path in ordered]
    first = headers[0]
    shape = (int(first.Columns), int(first.Rows), len(headers))
    if shape != volume.shape or not np.allclose(affine, volume.affine, atol=1e-4):
        raise DicomSegError(
            f"{folder}: the series no longer matches the volume segmented (shape {shape} against {volume.shape})"
        )
    if not str(first.get("FrameOfReferenceUID", "") or ""):
        raise DicomSegError(
            f"{folder}: the series has no FrameOfReferenceUID, which a DICOM SEG must share with its images"
        )
    slice_spacing = float(np.linalg.norm(affine[:3, 2]))
    for path, ds in zip(ordered, headers):
        _instance_identifiers(path, ds)
        for tag in _PATIENT_AND_STUDY:
            if tag not in ds:
                setattr(ds, tag, "")
        if not ds.get("SliceThickness"):
            ds.SliceThickness = f"{slice_spacing:.6g}"
    return headers, _derived_entity_uids(pydicom, headers)


@contextlib.contextmanager
def _notes() -> Iterator[list[str]]:
    """Collect what highdicom and pydicom warn about (bad person names, empty images...) for the
    record, instead of letting it reach the terminal as stray lines."""

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found.append(record.getMessage())

    found: list[str] = []
    handler = Collect(logging.WARNING)
    loggers = [logging.getLogger(name) for name in ("highdicom", "pydicom")]
    before = [(logger.propagate, logger.handlers[:]) for logger in loggers]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for logger in loggers:
            logger.handlers, logger.propagate = [handler], False
        try:
            yield found
        finally:
            for logger, (propagate, handlers) in zip(loggers, before):
                logger.handlers, logger.propagate = handlers, propagate
    found.extend(str(w.message) for w in caught)


def _segment_description(highdicom: Any, number: int, name: str) -> Any:
    from pydicom.sr.codedict import codes

    code = structure_code(name)
    algorithm = highdicom.AlgorithmIdentificationSequence(
        name="sammoe", family=codes.cid7162.ArtificialIntelligence, version=__version__
    )
    description = highdicom.seg.SegmentDescription(
        segment_number=number,
        segment_label=name,
        segmented_property_category=code.category,
        segmented_property_type=code.type,
        algorithm_type="AUTOMATIC",
        algorithm_identification=algorithm,
    )
    if code.laterality is not None:
        description.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [
            highdicom.sr.CodedConcept.from_code(code.laterality)
        ]
    return description


def write_dicom_seg(
    label_map: np.ndarray, volume: Volume, segments: list[tuple[str, int]], source: Path, path: Path
) -> dict[str, Any]:
    """Write ``label_map`` (on ``volume``'s grid, read from the series folder ``source``) to ``path``.

    ``segments`` are (name, label value) in segment order. Returns the record for the sidecar.
    """
    highdicom = _highdicom()
    import pydicom

    headers, missing = _source_headers(source, volume)
    lookup = np.zeros(max([int(label_map.max()), *(label for _, label in segments)]) + 1, np.uint16)
    for number, (_, label) in enumerate(segments, start=1):
        lookup[label] = number  # other values (none, from a pipeline result) stay background
    frames = lookup.astype(np.uint8 if len(segments) < 256 else np.uint16)[label_map.transpose(2, 1, 0)]
    descriptions = [_segment_description(highdicom, n, name) for n, (name, _) in enumerate(segments, start=1)]
    with _notes() as notes:
        try:
            seg = highdicom.seg.Segmentation(
                source_images=headers,
                pixel_array=frames,
                segmentation_type=highdicom.seg.SegmentationTypeValues.BINARY,
                segment_descriptions=descriptions,
                series_instance_uid=pydicom.uid.generate_uid(),
                series_number=SERIES_NUMBER,
                sop_instance_uid=pydicom.uid.generate_uid(),
                instance_number=1,
                manufacturer="sammoe",
                manufacturer_model_name="sammoe",
                software_versions=__version__,
                device_serial_number="none",
                series_description="sammoe segmentation",
            )
        except (ValueError, TypeError, KeyError, AttributeError) as e:  # what highdicom raises for unusable sources
            problem = " ".join(str(e).split())
            raise DicomSegError(f"{source}: highdicom cannot make a SEG of this series ({problem})") from None
        seg.save_as(path)
    return {
        "sop_instance_uid": str(seg.SOPInstanceUID),
        "series_instance_uid": str(seg.SeriesInstanceUID),
        "referenced_series_instance_uid": str(headers[0].SeriesInstanceUID),
        "referenced_instances": len(headers),
        "frames": int(seg.NumberOfFrames),
        "segments": [
            {"segment_number": n, "name": name, "label": label, **structure_code(name).to_dict()}
            for n, (name, label) in enumerate(segments, start=1)
        ],
        **({"source_uids_derived": missing} if missing else {}),
        **({"notes": sorted(set(" ".join(n.split()) for n in notes))} if notes else {}),
    }
