"""Experts and foundations on the Hugging Face Hub: export an expert as a Hub repo folder,
publish it, fetch experts and foundation weights back (``hf://ORG/NAME[@REVISION][/FILE]``),
offline from the local Hub cache.

Nothing here imports huggingface_hub or torch at module level; each function imports what it
needs. Every Hub call gets its endpoint, cache folder and offline switch explicitly from
:class:`~sammoe_core.hub.settings.HubSettings` (read from the environment at call time, since
huggingface_hub reads its own variables only once, at import).
"""

from sammoe_core.hub.errors import HubRefused, HubUnavailable
from sammoe_core.hub.export import export_expert, find_expert
from sammoe_core.hub.fetch import fetch_expert, fetch_file
from sammoe_core.hub.location import HubRef, is_hub_uri, parse_hub_uri
from sammoe_core.hub.publish import PublishResult, publish_expert
from sammoe_core.hub.settings import HubSettings

__all__ = [
    "HubRef",
    "HubRefused",
    "HubSettings",
    "HubUnavailable",
    "PublishResult",
    "export_expert",
    "fetch_expert",
    "fetch_file",
    "find_expert",
    "is_hub_uri",
    "parse_hub_uri",
    "publish_expert",
]
