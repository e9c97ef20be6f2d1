"""Measuring segmentation: Dice, and ``sammoe evaluate`` (foundation, each expert and the MoE
from simulated clicks)."""
