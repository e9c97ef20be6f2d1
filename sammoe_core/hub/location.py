"""Hub locations as sammoe writes them: ``hf://ORG/NAME[@REVISION][/PATH]``.

The grammar is huggingface_hub's own ``hf://`` URI (``parse_hf_uri``), limited to model repos:
``hf://org/liver-expert@v1.0.0`` is an expert repo at tag v1.0.0,
``hf://blueyo0/SAM-Med3D/sam_med3d_turbo.pth`` one file of a repo on its default branch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SammoeError

HF_PREFIX = "hf://"
DEFAULT_REVISION = "main"


@dataclass(frozen=True)
class HubRef:
    """A model repo on the Hub, a revision (None: the default branch) and a path in it ('' : the repo)."""

    repo_id: str
    revision: str | None = None
    path: str = ""

    @property
    def uri(self) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        return f"{HF_PREFIX}{self.repo_id}{rev}{'/' + self.path if self.path else ''}"

    @property
    def revision_or_default(self) -> str:
        return self.revision or DEFAULT_REVISION

    def __str__(self) -> str:
        return self.uri


def is_hub_uri(text: str) -> bool:
    """Whether ``text`` names a Hub location (``hf://...``) rather than a local path or pip requirement."""
    return text.startswith(HF_PREFIX)


def parse_hub_uri(text: str, want_path: bool | None = None) -> HubRef:
    """Parse ``hf://ORG/NAME[@REVISION][/PATH]``; ``want_path`` True/False requires a file path/none."""
    from huggingface_hub.errors import HfUriError
    from huggingface_hub.utils import parse_hf_uri

    if not is_hub_uri(text):
        raise SammoeError(f"{text}: not a Hub location (expected hf://ORG/NAME[@REVISION])")
    try:
        parsed = parse_hf_uri(text)
    except HfUriError as e:
        raise SammoeError(f"{text}: not a Hub location ({' '.join(str(e).split())})") from None
    if parsed.type != "model":
        raise SammoeError(f"{text}: a {parsed.type} repo; sammoe experts and foundations live in model repos")
    ref = HubRef(parsed.id, parsed.revision, parsed.path_in_repo.strip("/"))
    if want_path is True and not ref.path:
        raise SammoeError(f"{text}: name a file in the repo, e.g. hf://{ref.repo_id}/weights.pth")
    if want_path is False and ref.path:
        raise SammoeError(f"{text}: an expert is a whole repo (hf://ORG/NAME[@REVISION]), not a file in one")
    return ref
