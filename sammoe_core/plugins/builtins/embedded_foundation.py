"""Registers the foundation shipped inside the sammoe package, when its weights are there.

The package data ``sammoe_core/weights/foundation.json`` (a FoundationSpec whose ``weights`` is
relative to it) names the weights file, ``sammoe-small.safetensors`` beside it (trained by
``examples/train_default/``). Without that file (a stripped install) this registers nothing and
``resolve_foundation()`` says how to choose a foundation.
"""

from __future__ import annotations

import json
from pathlib import Path

from sammoe_core.plugins.hookspecs import hookimpl

SPEC_FILE = Path(__file__).resolve().parents[2] / "weights" / "foundation.json"


@hookimpl
def register_foundations(register):
    if SPEC_FILE.is_file():
        from sammoe_core.experts.foundations import FoundationSpec

        data = json.loads(SPEC_FILE.read_text(encoding="utf-8"))
        data["weights"] = SPEC_FILE.parent / data["weights"]
        register(FoundationSpec.model_validate(data))
