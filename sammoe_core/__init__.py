"""sammoe: a frozen SAM-Med3D foundation plus pluggable finetuned experts, merged by a small gate."""

__version__ = "0.1.0"
