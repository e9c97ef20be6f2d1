"""Regenerate plugins/sammoe-expert-spinal-cord: a PLACEHOLDER expert on a random test foundation.

No trained foundation exists yet, so the first-party plugin ships an expert whose delta perturbs
the decoder of a random-init ``sammoe-tiny`` network (seed 0, see
``sammoe_core.testing.make_test_foundation``). The foundation file is reproducible byte for
byte, so its sha256 (named in the manifest) is too, and tests rebuild it to compose the expert.
Once the trained foundation and a real spinal-cord finetune exist, build the expert folder with
the finetuning command instead and run ``sammoe new-plugin`` on it the same way.

    python examples/placeholder_spinal_cord_expert.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sammoe_core.experts.scaffold import new_plugin
from sammoe_core.testing import make_test_expert, make_test_foundation

ROOT = Path(__file__).resolve().parent.parent
FOUNDATION_CONFIG, FOUNDATION_SEED = "sammoe-tiny", 0


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        foundation = make_test_foundation(Path(tmp) / "foundation.safetensors", FOUNDATION_CONFIG, FOUNDATION_SEED)
        expert = make_test_expert(
            Path(tmp) / "spinal-cord",
            foundation,
            name="spinal-cord",
            parts="decoder",
            seed=1,
            description=(
                "Spinal cord in CT. PLACEHOLDER: random decoder weights over a random sammoe-tiny test "
                "foundation, until the trained foundation and a real finetune exist."
            ),
            targets=[{"name": "spinal_cord", "labels": [10]}],
            authors=["the sammoe developers"],
        )
        project = new_plugin("sammoe-expert-spinal-cord", expert.folder, ROOT / "plugins", overwrite=True)
    print(f"{project}: foundation {foundation.sha256}, expert weights {expert.manifest.weights.sha256}")


if __name__ == "__main__":
    main()
