"""Volumes in, results out: reading NIfTI and DICOM with their checks and limits, the labelled
dataset layout, and the label map, sidecar and preview written on the input grid, with the
optional DICOM SEG (:mod:`.dicom_seg`, coded by :mod:`.structure_codes`), one mask per target
(:mod:`.structure_files`) and per-structure statistics (:mod:`.statistics`)."""
