"""``sammoe publish``: an expert to a Hub model repo, as one commit plus a version tag.

The expert is checked and exported to a temporary folder (:mod:`.export`), then
``create_repo(exist_ok=True)``, one ``upload_folder`` commit and ``create_tag`` on that commit
(the manifest's version, or the revision asked for). A tag that exists already is refused
before anything is uploaded: a published version never changes. The token is the one
huggingface_hub finds (``HF_TOKEN`` or ``hf auth login``); sammoe never reads, prints or
writes it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from sammoe_core.errors import SammoeError
from sammoe_core.experts.expert import Expert
from sammoe_core.hub.errors import HubUnavailable, refused, unreachable_reason
from sammoe_core.hub.export import export_expert
from sammoe_core.hub.location import HubRef
from sammoe_core.hub.settings import HubSettings, hub_progress


@dataclass(frozen=True)
class PublishResult:
    """Where the expert went: the repo, its page, the commit and the tag naming it."""

    repo_id: str
    url: str
    commit: str
    tag: str
    uri: str


def _check_repo_id(repo_id: str) -> None:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise SammoeError(f"{repo_id}: not a Hub repo id ({' '.join(str(e).split())})") from None
    if repo_id.count("/") != 1:
        raise SammoeError(f"{repo_id}: give the repo as ORG/NAME (your user name or an organisation)")


def publish_expert(
    expert: Expert,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    settings: HubSettings | None = None,
    progress: bool = False,
) -> PublishResult:
    """Publish ``expert`` to model repo ``repo_id`` and tag the commit ``revision`` (default: the
    manifest's version). Raises :class:`SammoeError` subclasses with one-line messages."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    settings = settings or HubSettings.from_env()
    _check_repo_id(repo_id)
    tag = revision or expert.manifest.version
    ref = HubRef(repo_id, tag)
    if settings.offline:
        raise HubUnavailable(
            f"{ref.uri}: publishing needs the Hub but sammoe is offline ({settings.offline_because}); "
            f"publish where the network is available, or hand over `sammoe export {expert.name} DIR`"
        )
    api = settings.api()
    with tempfile.TemporaryDirectory(prefix="sammoe-publish-") as tmp, hub_progress(progress):
        folder = export_expert(expert, Path(tmp) / "repo", repo_id=repo_id, revision=tag)
        try:
            url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
            if api.revision_exists(repo_id, revision=tag):
                raise SammoeError(
                    f"{ref.uri}: {repo_id} already has a revision {tag!r}; publish a new version "
                    "(raise `version` in expert.json) or pass another --revision"
                )
            commit = api.upload_folder(
                repo_id=repo_id,
                repo_type="model",
                folder_path=folder,
                commit_message=f"sammoe publish {expert.name} {expert.manifest.version}",
            )
            api.create_tag(
                repo_id, tag=tag, revision=commit.oid, tag_message=f"{expert.name} {expert.manifest.version}"
            )
        except HfHubHTTPError as e:
            raise refused(e, ref, settings) from None
        except (httpx2.TransportError, ConnectionError) as e:
            raise HubUnavailable(f"{ref.uri}: cannot publish: {unreachable_reason(e, settings)}") from None
    return PublishResult(repo_id=repo_id, url=str(url), commit=commit.oid, tag=tag, uri=ref.uri)
