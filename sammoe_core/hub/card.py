"""The model card (``README.md``) of an expert repo, built from its manifest with huggingface_hub's
``ModelCard``/``ModelCardData``: the YAML metadata the Hub indexes (library, task, base model,
licence, tags) and a body that says what the expert segments, how it was evaluated and how to
use it with sammoe.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, cast

from sammoe_core.experts.manifest import MANIFEST_FILE, ExpertManifest

if TYPE_CHECKING:
    from huggingface_hub import ModelCard, ModelCardData

BASE_TAGS = ("medical", "3d", "segmentation", "sam-med3d-moe")
# Licence ids the Hub knows that are also SPDX ids (lower-cased); any other expression is
# published as ``license: other`` with its own name.
HUB_LICENSES = frozenset(
    {
        "apache-2.0",
        "mit",
        "bsd-2-clause",
        "bsd-3-clause",
        "bsd-3-clause-clear",
        "isc",
        "zlib",
        "unlicense",
        "cc0-1.0",
        "cc-by-2.0",
        "cc-by-2.5",
        "cc-by-3.0",
        "cc-by-4.0",
        "cc-by-sa-3.0",
        "cc-by-sa-4.0",
        "cc-by-nc-2.0",
        "cc-by-nc-3.0",
        "cc-by-nc-4.0",
        "cc-by-nd-4.0",
        "cc-by-nc-nd-3.0",
        "cc-by-nc-nd-4.0",
        "cc-by-nc-sa-2.0",
        "cc-by-nc-sa-3.0",
        "cc-by-nc-sa-4.0",
        "gpl-2.0",
        "gpl-3.0",
        "lgpl-2.1",
        "lgpl-3.0",
        "agpl-3.0",
        "mpl-2.0",
        "epl-1.0",
        "epl-2.0",
        "eupl-1.1",
        "eupl-1.2",
        "afl-3.0",
        "artistic-2.0",
        "bsl-1.0",
        "ecl-2.0",
        "osl-3.0",
        "postgresql",
        "ofl-1.1",
        "ncsa",
        "odbl",
        "odc-by",
        "pddl",
        "wtfpl",
        "cdla-sharing-1.0",
        "cdla-permissive-1.0",
        "cdla-permissive-2.0",
        "ms-pl",
        "lppl-1.3c",
    }
)
MODALITY_NAMES = {"ct": "CT", "mr": "MR", "any": "CT and MR"}


def slug(text: str) -> str:
    """A Hub tag from free text: lower case, runs of other characters become '-'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def hub_license(spdx: str) -> dict[str, str]:
    """The card's licence fields for an SPDX expression."""
    if spdx.lower() in HUB_LICENSES:
        return {"license": spdx.lower()}
    return {"license": "other", "license_name": slug(spdx)}


def card_metadata(manifest: ExpertManifest) -> ModelCardData:
    """The YAML header: library, task, base model (where the foundation's Hub id is known), tags."""
    from huggingface_hub import ModelCardData

    tags = [*BASE_TAGS]
    if manifest.modality != "any":
        tags.append(manifest.modality)
    tags += [slug(t.name) for t in manifest.targets if slug(t.name)]
    base = manifest.foundation.hub_id
    extra: dict[str, Any] = {"base_model_relation": "adapter"} if base else {}
    return ModelCardData(
        library_name="sammoe",
        pipeline_tag="image-segmentation",
        base_model=base,
        tags=list(dict.fromkeys(tags)),
        **cast(dict[str, Any], hub_license(manifest.license)),
        **extra,
    )


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def card_body(manifest: ExpertManifest, repo_id: str | None, revision: str | None = None) -> str:
    """The Markdown under the YAML header; the usage lines name ``repo_id`` at ``revision``
    (default: the manifest's version)."""
    m = manifest
    where = f"hf://{repo_id or 'ORG/' + m.name}@{revision or m.version}"
    targets = _table(
        ["Target", "Label values"],
        [[t.name, ", ".join(map(str, t.labels)) if t.labels else "-"] for t in m.targets],
    )
    if m.evaluation:
        evaluation = _table(
            ["Dataset", "Target", "Metric", "Value", "Cases"],
            [[r.dataset, r.target, r.metric, f"{r.value:.4g}", str(r.cases or "-")] for r in m.evaluation],
        )
    else:
        evaluation = "The author has not reported an evaluation."
    foundation = f"`{m.foundation.config}` network, weights sha256 `{m.foundation.sha256}`"
    if m.foundation.hub_id:
        foundation += f" ([{m.foundation.hub_id}](https://huggingface.co/{m.foundation.hub_id}))"
    parts = ", ".join(f"`{o}`" for o in m.overrides)
    calibration = (
        f"\n- `{m.calibration.path}/`: labelled cases ({', '.join(m.calibration.classes)}) for training sammoe's gate"
        if m.calibration
        else ""
    )
    return f"""
# {m.name}

{m.description}

A [sammoe](https://pypi.org/project/sammoe/) expert for {MODALITY_NAMES[m.modality]}: a finetune of a \
SAM-Med3D foundation, shipped as the tensors it changed ({parts}). sammoe runs it next to the \
foundation and its other experts, and a small gate picks the expert for each click \
(SAM-Med3D-MoE, Wang et al., MICCAI 2024).

## Targets

{targets}

## Evaluation

{evaluation}

## Use with sammoe

```bash
pip install sammoe
sammoe add-expert {where}
sammoe experts show {m.name}
```

The expert runs only on the foundation it was finetuned from: {foundation}. \
sammoe checks the sha256 of the weights against `{MANIFEST_FILE}` and refuses anything else. \
Offline, with the repo in the local Hub cache, the same command works with `HF_HUB_OFFLINE=1`; \
without the Hub, copy this repo's files to a folder and run `sammoe add-expert ./folder`.

## Files

- `{MANIFEST_FILE}`: the manifest (targets, foundation, preprocessing, sha256 of the weights)
- `{m.weights.file}`: the delta weights (safetensors), sha256 `{m.weights.sha256}`{calibration}

## Authors and licence

{", ".join(m.authors)}. Version {m.version}, licence `{m.license}`; needs sammoe >= {m.min_sammoe_version}.
"""


def expert_card(manifest: ExpertManifest, repo_id: str | None = None, revision: str | None = None) -> ModelCard:
    """The whole card; ``repo_id`` and ``revision`` (where it will be published) go into the usage lines."""
    from huggingface_hub import ModelCard

    body = card_body(manifest, repo_id, revision)
    return ModelCard(f"---\n{card_metadata(manifest).to_yaml()}\n---\n{body}")
