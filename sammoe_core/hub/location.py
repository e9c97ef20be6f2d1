"""Hub locations as sammoe writes them: ``hf://ORG/NAME[@REVISION][/PATH]``.

The grammar is huggingface_hub's own ``hf://`` URI (``parse_hf_uri``), limited to model repos:
``hf://org/liver-expert@v1.0.0`` is an expert repo at tag v1.0.0,
``hf://blueyo0/SAM-Med3D/sam_med3d_turbo.pth`` one file of a repo on its default branch.

Every part of a :class:`HubRef` becomes part of a path in the local Hub cache, so each is
checked when the ref is made (an :class:`InputError` naming the field): the repo id is ORG/NAME
in the Hub's characters, the revision a branch or tag name or a 40-hex commit, the path a
relative path in the repo without ``..`` or ``.`` parts. Neither a revision nor a path may
hold ``%`` (no percent-encoding: what ``hf://`` text encodes is decoded once already), a
backslash or a control character, or start with ``/``; a revision holds no ``..`` at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PureWindowsPath

from sammoe_core.errors import InputError

HF_PREFIX = "hf://"
DEFAULT_REVISION = "main"
MAX_REPO_ID = 96  # the Hub's limit

_REPO_PART = r"[A-Za-z0-9_](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?"
_REPO_ID = re.compile(rf"{_REPO_PART}/{_REPO_PART}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_REF_PART = r"[A-Za-z0-9_][A-Za-z0-9._+!-]*"
_REF_NAME = re.compile(rf"{_REF_PART}(?:/{_REF_PART})*")


def _unsafe_text(text: str) -> str | None:
    """What makes a revision or a path unfit to become part of a local path: a control
    character, '%', a backslash or a leading '/'; None if nothing does."""
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        return "holds a control character"
    if "%" in text:
        return "holds '%' (no percent-encoding: hf:// text is decoded once already)"
    if "\\" in text:
        return "holds a backslash (parts are separated by '/')"
    if text.startswith("/"):
        return "starts with '/'"
    return None


def _repo_id_problem(repo_id: str) -> str | None:
    if not _REPO_ID.fullmatch(repo_id):
        return "is not ORG/NAME (letters, digits, '-', '_' and '.'; no '-' or '.' at either end of a part)"
    if "--" in repo_id or ".." in repo_id or repo_id.endswith(".git") or len(repo_id) > MAX_REPO_ID:
        return f"is not a Hub repo id (no '--' or '..', no '.git' at the end, at most {MAX_REPO_ID} characters)"
    return None


def _revision_problem(revision: str) -> str | None:
    unsafe = _unsafe_text(revision)
    if unsafe:
        return unsafe
    if ".." in revision:
        return "holds '..'"
    if not (_COMMIT.fullmatch(revision) or _REF_NAME.fullmatch(revision)):
        return (
            "is neither a branch or tag name (letters, digits, '.', '_', '-', '+', '!', in parts separated "
            "by '/', none starting with '.' or '-') nor a 40-hex commit"
        )
    return None


def _path_problem(path: str) -> str | None:
    unsafe = _unsafe_text(path)
    if unsafe:
        return unsafe
    if PureWindowsPath(path).drive:
        return "starts with a drive; give a path relative to the repo"
    if ".." in path.split("/"):
        return "has a '..' part"
    if any(part in ("", ".") for part in path.split("/")):
        return "has an empty or '.' part"
    return None


@dataclass(frozen=True)
class HubRef:
    """A model repo on the Hub, a revision (None: the default branch) and a path in it ('' : the repo)."""

    repo_id: str
    revision: str | None = None
    path: str = ""

    def __post_init__(self) -> None:
        """Refuse any part that could leave the Hub cache folder (see the module doc)."""
        checks: list[tuple[str, str, Callable[[str], str | None]]] = [("repo id", self.repo_id, _repo_id_problem)]
        if self.revision is not None:
            checks.append(("revision", self.revision, _revision_problem))
        if self.path:
            checks.append(("path", self.path, _path_problem))
        for field, value, problem_of in checks:
            problem = problem_of(value)
            if problem:
                raise InputError(f"{field} {value!r} {problem}")

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
    """Parse ``hf://ORG/NAME[@REVISION][/PATH]``; ``want_path`` True/False requires a file path/none.
    Every problem is an :class:`InputError` that starts with ``text`` (and names the field)."""
    from huggingface_hub.errors import HfUriError
    from huggingface_hub.utils import parse_hf_uri

    if not is_hub_uri(text):
        raise InputError(f"{text}: not a Hub location (expected hf://ORG/NAME[@REVISION])")
    try:
        parsed = parse_hf_uri(text)
    except HfUriError as e:
        raise InputError(f"{text}: not a Hub location ({' '.join(str(e).split())})") from None
    if parsed.type != "model":
        raise InputError(f"{text}: a {parsed.type} repo; sammoe experts and foundations live in model repos")
    try:
        ref = HubRef(parsed.id, parsed.revision, parsed.path_in_repo)
    except InputError as e:
        raise InputError(f"{text}: {e}") from None
    if want_path is True and not ref.path:
        raise InputError(f"{text}: name a file in the repo, e.g. hf://{ref.repo_id}/weights.pth")
    if want_path is False and ref.path:
        raise InputError(f"{text}: an expert is a whole repo (hf://ORG/NAME[@REVISION]), not a file in one")
    return ref
