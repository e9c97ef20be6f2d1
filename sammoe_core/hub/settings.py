"""Where sammoe talks to the Hub, where the downloads are cached, whether it may go online.

huggingface_hub reads its environment variables once, when it is imported; sammoe reads them
when a command runs and passes ``endpoint``, ``cache_dir`` and ``local_files_only`` to every
call, so a variable set later (or by a test) is honoured:

* ``HF_ENDPOINT``: the Hub (default https://huggingface.co; a mirror or a test double);
* ``SAMMOE_HUB_CACHE``, else ``HF_HUB_CACHE``, else ``HF_HOME/hub``: the download cache, by
  default the one every Hugging Face tool shares (``hf download`` fills it too);
* ``SAMMOE_OFFLINE`` or ``HF_HUB_OFFLINE``: never go online; only the cache is used.

The token is never handled here: huggingface_hub finds it (``HF_TOKEN`` or ``hf auth login``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from huggingface_hub import HfApi

DEFAULT_ENDPOINT = "https://huggingface.co"
OFFLINE_VARIABLES = ("SAMMOE_OFFLINE", "HF_HUB_OFFLINE")


def _true(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def default_cache_dir(env: Mapping[str, str]) -> Path:
    """The Hub download cache the environment names (see the module doc)."""
    for variable in ("SAMMOE_HUB_CACHE", "HF_HUB_CACHE"):
        if env.get(variable):
            return Path(env[variable]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    cache_root = Path(env["XDG_CACHE_HOME"]).expanduser() if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return cache_root / "huggingface" / "hub"


@dataclass(frozen=True)
class HubSettings:
    """How Hub calls are made: ``offline_because`` names the variable that forbids the network."""

    endpoint: str
    cache_dir: Path
    offline_because: str | None = None

    @property
    def offline(self) -> bool:
        return self.offline_because is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HubSettings:
        env = os.environ if env is None else env
        offline = next((f"{v}={env[v]}" for v in OFFLINE_VARIABLES if _true(env.get(v))), None)
        if offline is None:
            from huggingface_hub import constants

            if constants.HF_HUB_OFFLINE:  # set before huggingface_hub was imported
                offline = "HF_HUB_OFFLINE=1"
        endpoint = (env.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        return cls(endpoint=endpoint, cache_dir=default_cache_dir(env), offline_because=offline)

    def api(self) -> HfApi:
        """An ``HfApi`` on this endpoint; the token is the one huggingface_hub finds itself."""
        from huggingface_hub import HfApi

        from sammoe_core import __version__

        return HfApi(endpoint=self.endpoint, library_name="sammoe", library_version=__version__)


@contextlib.contextmanager
def hub_progress(show: bool) -> Iterator[None]:
    """huggingface_hub's progress bars on (``show``) or off for the duration of a call."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    if not show and not was_disabled:
        disable_progress_bars()
    try:
        yield
    finally:
        if not show and not was_disabled:
            enable_progress_bars()
