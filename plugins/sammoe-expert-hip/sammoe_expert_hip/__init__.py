"""sammoe expert plugin sammoe-expert-hip: Expert for the femoral heads (left and right hip) on CT and MR torsos: the sammoe-small foundation's prompt encoder and mask decoder finetuned on synthetic phantoms.

Registers the expert in ``expert-data/`` (manifest + weights, shipped as package data; a
folder name that is no Python identifier, so setuptools does not take it for a package). Keep this
module cheap to import: no torch here, sammoe imports every plugin when it starts.
"""

from pathlib import Path

from sammoe_core import hookimpl

EXPERT_DIR = Path(__file__).resolve().parent / "expert-data"


@hookimpl
def register_experts(register):
    register(EXPERT_DIR)
