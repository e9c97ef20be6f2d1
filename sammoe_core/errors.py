"""The error hierarchy: every expected failure is a :class:`SammoeError`, of a kind users can catch.

=====================  =====================================================================
kind                   what went wrong
=====================  =====================================================================
:class:`InputError`    a volume, prompt, option, dataset or request the user gave is unusable
:class:`WeightsError`  a weights file is missing, damaged, unverified or does not fit its network
:class:`PluginError`   a plugin, expert, gate or policy could not be registered or used
:class:`HubError`      the Hugging Face Hub is unreachable or refused a request
:class:`StateError`    ``SAMMOE_HOME`` (the registry and its folders) is unusable
:class:`OutputExistsError`  an output exists and overwriting was not asked for
=====================  =====================================================================

The command line turns every one of them, and every ``OSError``, into one ``Error: ...`` line
and exit status 2 (:mod:`sammoe_core.cli.errors`); anything else is a bug: one line pointing to
``--debug``, exit status 1.
"""

from __future__ import annotations

from pathlib import Path


class SammoeError(Exception):
    """An expected failure the user can fix: the message names the thing and the problem."""


class InputError(SammoeError, ValueError):
    """A volume, prompt, option, dataset or request is unusable (also a ``ValueError``)."""


class ResourceLimitError(InputError):
    """An input asks for more than a configured limit (voxels, targets, clicks, request size)."""


class WeightsError(SammoeError):
    """A weights file is missing, damaged, unverified, or does not fit the network."""


class PluginError(SammoeError):
    """A plugin, expert, gate or policy could not be registered or used."""


class HubError(SammoeError):
    """The Hugging Face Hub is unreachable, or refused a request."""


class StateError(SammoeError):
    """``SAMMOE_HOME`` or the state in it is unusable."""


class OutputExistsError(SammoeError, FileExistsError):
    """The output exists and overwriting was not requested."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(f"{path}: output exists (pass --overwrite to replace it)")
        self.path = Path(path)
