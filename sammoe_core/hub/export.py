"""``sammoe export``: an expert as the folder its Hub repo holds, written locally with no network.

The repo layout is the expert folder itself (``expert.json``, the weights, the optional
calibration folder, byte for byte) plus a ``README.md`` model card made from the manifest.
Only regular files inside the expert folder go into it: a symlink out of the folder is an
error naming it, and nothing is written (:func:`~sammoe_core.experts.expert.copy_expert_folder`),
so ``sammoe publish``, which uploads this folder, never uploads a file from elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from sammoe_core.errors import SammoeError
from sammoe_core.experts.expert import Expert, copy_expert_folder
from sammoe_core.experts.manifest import MANIFEST_FILE
from sammoe_core.hub.card import expert_card

CARD_FILE = "README.md"


def find_expert(name_or_folder: str | Path) -> Expert:
    """An available expert by name, or the expert folder at that path (not added yet)."""
    from sammoe_core.experts.catalog import get_expert

    path = Path(name_or_folder)
    if (path / MANIFEST_FILE).is_file():
        return Expert.from_folder(path)
    if path.is_dir():
        raise SammoeError(f"{path}: holds no {MANIFEST_FILE}; not an expert folder")
    return get_expert(str(name_or_folder))


def export_expert(
    expert: Expert,
    directory: str | Path,
    repo_id: str | None = None,
    revision: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Check ``expert`` in full, then write its Hub repo folder to ``directory`` (new or empty;
    with ``overwrite``, a previous export is replaced as a whole). ``repo_id`` and ``revision``
    (default: the manifest's version), where it will be published, go into the card's usage
    lines. Returns the folder."""
    from sammoe_core.experts.manage import check_expert

    directory = Path(directory)
    if directory.exists() and overwrite and not (directory / MANIFEST_FILE).is_file() and any(directory.iterdir()):
        raise SammoeError(f"{directory}: exists and is not an expert folder; export into a new or empty folder")
    check_expert(expert)
    card = expert_card(expert.manifest, repo_id, revision)
    empty = directory.is_dir() and not any(directory.iterdir())  # replaced only once the copy is whole
    copy_expert_folder(expert, directory, overwrite=overwrite or empty, extra_files={CARD_FILE: str(card)})
    return directory
