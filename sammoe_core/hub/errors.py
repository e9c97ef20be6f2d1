"""Hub failures as one line each: what was asked for, what went wrong, what to do.

huggingface_hub raises typed exceptions with multi-line messages; sammoe turns the ones a user
can act on into :class:`SammoeError` subclasses whose message names the repo, the revision or
file, and the next step. No message carries a token: none is ever put into one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sammoe_core.errors import HubError, SammoeError

if TYPE_CHECKING:
    from sammoe_core.hub.location import HubRef
    from sammoe_core.hub.settings import HubSettings


class HubUnavailable(HubError):
    """Something is not in the local Hub cache and the Hub cannot be asked (offline or unreachable)."""


class HubRefused(HubError):
    """The Hub answered with an error: no such repo, revision or file, or no permission."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def unreachable_reason(exc: BaseException | None, settings: HubSettings) -> str:
    """Why the Hub could not be asked: the offline switch, or the connection error underneath."""
    from huggingface_hub.errors import HfHubHTTPError

    if settings.offline:
        return f"sammoe is offline ({settings.offline_because})"
    cause = exc
    while cause is not None and cause.__cause__ is not None:
        cause = cause.__cause__
    if isinstance(cause, HfHubHTTPError) and cause.response is not None:
        return f"{settings.endpoint} answered {cause.response.status_code}"
    return f"{settings.endpoint} cannot be reached ({type(cause).__name__ if cause is not None else 'no answer'})"


def unavailable(
    ref: HubRef, what: str, reason: str, settings: HubSettings, command: str, local_alternative: str
) -> HubUnavailable:
    """The one-line message for a download that needs the network it does not have."""
    return HubUnavailable(
        f"{ref.uri}: {what} is not in the local Hub cache ({settings.cache_dir}) and {reason}; "
        f"where the network is available run `{command}` (then copy the cache folder here and set "
        f"SAMMOE_HUB_CACHE to it), or use a local copy: `{local_alternative}`"
    )


def refused(exc: BaseException, ref: HubRef, settings: HubSettings, known_revisions: str = "") -> SammoeError:
    """A Hub error answer as one line (no such repo/revision/file, no permission, ...)."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, GatedRepoError):
        return HubRefused(
            f"{ref.uri}: {ref.repo_id} is gated; accept its terms on the Hub, then log in (`hf auth login`)"
        )
    if isinstance(exc, RepositoryNotFoundError):
        return HubRefused(
            f"{ref.uri}: no model repo {ref.repo_id} on {settings.endpoint} (a private repo needs a login: "
            "`hf auth login` or HF_TOKEN)"
        )
    if isinstance(exc, RevisionNotFoundError):
        known = f" (it has {known_revisions})" if known_revisions else ""
        return HubRefused(f"{ref.uri}: {ref.repo_id} has no revision {ref.revision_or_default!r}{known}")
    if isinstance(exc, RemoteEntryNotFoundError):
        return HubRefused(f"{ref.uri}: {ref.repo_id} has no file {ref.path!r} at {ref.revision_or_default!r}")
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "?"
        if status in (401, 403):
            return HubRefused(
                f"{ref.uri}: the Hub refused the request ({status}): log in with a token allowed to "
                "write there (`hf auth login` or HF_TOKEN)"
            )
        detail = exc.server_message or _first_line(exc)
        return HubRefused(f"{ref.uri}: the Hub answered {status}: {' '.join(detail.split())}")
    return HubRefused(f"{ref.uri}: {type(exc).__name__}: {_first_line(exc)}")
