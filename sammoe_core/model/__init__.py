"""The SAM-Med3D network: configs, the three parts, their assembly, and checkpoint I/O."""

from sammoe_core.model.configs import SamConfig, config_names, get_config
from sammoe_core.model.sam3d import Sam3D

__all__ = ["SamConfig", "Sam3D", "config_names", "get_config"]
