"""Downloads from the Hub into the local Hub cache, offline-first where sammoe is told to be.

Everything goes through ``snapshot_download`` with an explicit endpoint, cache folder and
``local_files_only`` (see :mod:`.settings`). Its behaviour is what sammoe promises:

* online, it asks the Hub once what the revision is; if the connection fails it falls back to
  the cache at once (no retries) and, when the files are cached, uses them;
* offline (``SAMMOE_OFFLINE``/``HF_HUB_OFFLINE``), it never opens a connection;
* anything missing fails with one line that names the repo, the revision or file, the command
  to run where the network is available, and the local alternative.

An expert is fetched in two steps: its manifest, then exactly the files the manifest names
(weights, calibration folder), from the same commit.

The refs asked for are checked already (:mod:`.location`); what comes back is checked too:
every snapshot folder and cached file handed on resolves (links followed) inside the cache
folder, else it is a :class:`~sammoe_core.files.safe_paths.PathEscapeError` naming it, and it is not
used.
"""

from __future__ import annotations

from pathlib import Path

from sammoe_core.experts.manifest import MANIFEST_FILE, read_manifest
from sammoe_core.files.safe_paths import resolve_inside
from sammoe_core.hub.errors import HubRefused, HubUnavailable, refused, unavailable, unreachable_reason
from sammoe_core.hub.location import HubRef
from sammoe_core.hub.settings import HubSettings, hub_progress

EXPERT_FOLDER_ALTERNATIVE = "sammoe add-expert ./folder"


def _known_revisions(ref: HubRef, settings: HubSettings) -> str:
    """'tags v1, v2; branches main' for an error message; '' if the Hub cannot say."""
    try:
        refs = settings.api().list_repo_refs(ref.repo_id)
    except Exception:  # only decorates an error message: any failure just leaves it out
        return ""
    kinds = (("tags", refs.tags), ("branches", refs.branches))
    return "; ".join(f"{kind} {', '.join(r.name for r in items)}" for kind, items in kinds if items)


def snapshot(
    ref: HubRef,
    patterns: list[str],
    settings: HubSettings,
    what: str,
    command: str,
    local_alternative: str,
    revision: str | None = None,
    progress: bool = False,
) -> Path:
    """The cached snapshot folder of ``ref`` holding the files matching ``patterns`` (downloaded
    if needed and allowed). ``revision`` overrides ``ref``'s (a commit already resolved); ``what``,
    ``command`` and ``local_alternative`` word the message when it is unavailable."""
    import httpx2
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RevisionNotFoundError

    from sammoe_core import __version__

    def missing(exc: BaseException | None) -> HubUnavailable:
        return unavailable(ref, what, unreachable_reason(exc, settings), settings, command, local_alternative)

    try:
        with hub_progress(progress):
            folder = snapshot_download(
                ref.repo_id,
                repo_type="model",
                revision=revision or ref.revision_or_default,
                cache_dir=settings.cache_dir,
                local_files_only=settings.offline,
                allow_patterns=patterns,
                endpoint=settings.endpoint,
                library_name="sammoe",
                library_version=__version__,
            )
    except LocalEntryNotFoundError as e:
        raise missing(e) from None
    except RevisionNotFoundError as e:
        raise refused(e, ref, settings, _known_revisions(ref, settings)) from None
    except HfHubHTTPError as e:
        raise refused(e, ref, settings) from None
    except (httpx2.TransportError, ConnectionError) as e:  # the connection dropped mid-download
        raise missing(e) from None
    resolve_inside(settings.cache_dir, folder, f"{ref.uri}: the cached snapshot")
    return Path(folder)


def cached_repo_folder(snapshot_folder: Path) -> Path:
    """The repo's folder in the Hub cache (``models--ORG--NAME``) holding ``snapshot_folder``
    (its ``snapshots/COMMIT``, as :func:`snapshot` returns it). The snapshot's files are links
    into the repo folder's ``blobs/``: they resolve inside it, not inside the snapshot folder."""
    return snapshot_folder.parent.parent


def fetch_expert(ref: HubRef, settings: HubSettings | None = None, progress: bool = False) -> Path:
    """The cached snapshot folder of an expert repo: its manifest (validated) and the files it
    names, each resolving inside the cache. The weights are not checked here:
    :func:`sammoe_core.experts.manage.check_expert` does."""
    settings = settings or HubSettings.from_env()
    hints = {"command": f"sammoe add-expert {ref.uri}", "local_alternative": EXPERT_FOLDER_ALTERNATIVE}
    cached_file = f"{ref.uri}: the cached file"
    first = snapshot(ref, [MANIFEST_FILE], settings, f"its {MANIFEST_FILE}", progress=progress, **hints)
    if not resolve_inside(settings.cache_dir, first / MANIFEST_FILE, cached_file).is_file():
        raise HubRefused(
            f"{ref.uri}: the repo holds no {MANIFEST_FILE} at {ref.revision_or_default!r}: not a sammoe expert "
            "(an expert repo is what `sammoe publish` uploads)"
        )
    manifest = read_manifest(first / MANIFEST_FILE)
    patterns = [manifest.weights.file]
    if manifest.calibration is not None:
        patterns.append(manifest.calibration.path.rstrip("/") + "/")
    what = f"its weights ({', '.join(patterns)})"
    folder = snapshot(ref, patterns, settings, what, revision=first.name, progress=progress, **hints)
    if not resolve_inside(settings.cache_dir, folder / manifest.weights.file, cached_file).is_file():
        raise HubRefused(f"{ref.uri}: the repo lacks {manifest.weights.file}, which its {MANIFEST_FILE} names")
    if manifest.calibration is not None:
        calibration = folder / manifest.calibration.path
        for path in (calibration, *calibration.rglob("*")):
            resolve_inside(settings.cache_dir, path, f"{ref.uri}: the cached calibration path")
    return folder


def fetch_file(
    ref: HubRef, command: str, local_alternative: str, settings: HubSettings | None = None, progress: bool = False
) -> tuple[Path, str]:
    """One file of a repo (``ref.path``) from the cache or the Hub: its cached path (which
    resolves inside the cache) and the commit."""
    settings = settings or HubSettings.from_env()
    folder = snapshot(ref, [ref.path], settings, ref.path, command, local_alternative, progress=progress)
    path = folder / ref.path
    if not resolve_inside(settings.cache_dir, path, f"{ref.uri}: the cached file").is_file():
        raise HubRefused(f"{ref.uri}: {ref.repo_id} has no file {ref.path!r} at {ref.revision_or_default!r}")
    return path, folder.name
