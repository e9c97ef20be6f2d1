"""Volumes on disk and in memory: reading, the geometry between grids, and writing on the input grid.

* :mod:`.volume`: :class:`Volume` (array + affine + original header) and its checks;
* :mod:`.nifti`, :mod:`.dicom`: the two readers, and :func:`.nifti.nifti_like` for outputs;
* :mod:`.reading`: :func:`read_volume` and :func:`as_volume`, the one entry point for inputs;
* :mod:`.geometry`: the model lattice (closest-RAS axes at the model's spacing) and the single
  resampling function used for images, masks and probabilities alike.
"""

from sammoe_core.io.volumes.geometry import Lattice, apply_affine, input_extent, ras_directions, resample
from sammoe_core.io.volumes.reading import as_volume, read_volume
from sammoe_core.io.volumes.volume import Volume, VolumeError

__all__ = [
    "Lattice",
    "Volume",
    "VolumeError",
    "apply_affine",
    "as_volume",
    "input_extent",
    "ras_directions",
    "read_volume",
    "resample",
]
