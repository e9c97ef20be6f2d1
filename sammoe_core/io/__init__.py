"""Volumes in, results out: reading NIfTI and DICOM with their checks and limits, the labelled
dataset layout, and the label map, sidecar and preview written on the input grid."""
