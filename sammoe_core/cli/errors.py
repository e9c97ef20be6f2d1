"""The command line's one error boundary: expected failures become one line, bugs point to --debug.

Every :class:`~sammoe_core.errors.SammoeError` (bad input, weights, plugins, the Hub, the state
folder, an existing output), every ``OSError`` (missing or unreadable files, a full or read-only
disk, a path that is not a folder), ``MemoryError``, ``RecursionError``, ``OverflowError`` and
pydantic validation errors print ``Error: <one line>`` on stderr and exit with status 2. Anything
else is a bug in sammoe or a plugin: one line saying so, pointing to ``--debug`` (or
``SAMMOE_DEBUG=1``), which shows the traceback instead; exit status 1.
"""

from __future__ import annotations

import errno
import os
from typing import Any

import click

from sammoe_core.errors import SammoeError

EXIT_EXPECTED = 2
EXIT_BUG = 1


class Failure(click.ClickException):
    """A failure already phrased as one line."""

    def __init__(self, message: str, exit_code: int = EXIT_EXPECTED) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click types exit_code as a ClassVar


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _os_error(e: OSError) -> str:
    where = e.filename if e.filename is not None else None
    what = e.strerror or type(e).__name__
    if e.errno == errno.ENOSPC:
        what = "no space left on the device"
    elif e.errno == errno.EROFS:
        what = "read-only file system"
    if where is None:
        return _one_line(str(e)) or what
    extra = f" -> {e.filename2}" if e.filename2 is not None else ""
    return f"{where}{extra}: {what}"


def describe_failure(e: BaseException) -> tuple[str, int] | None:
    """The one line and exit status for an expected failure; None for a bug."""
    from pydantic import ValidationError

    if isinstance(e, SammoeError):
        return _one_line(str(e)) or type(e).__name__, EXIT_EXPECTED
    if isinstance(e, OSError):
        return _os_error(e), EXIT_EXPECTED
    if isinstance(e, MemoryError):
        return "out of memory (the input is too large for this machine, or a limit is missing)", EXIT_EXPECTED
    if isinstance(e, RecursionError):
        return "input nested too deeply (maximum recursion depth exceeded)", EXIT_EXPECTED
    if isinstance(e, OverflowError):
        return f"a number in the input is too large ({_one_line(str(e))})", EXIT_EXPECTED
    if isinstance(e, ValidationError):
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or e.title
        return f"{e.title}: {where}: {first['msg']}", EXIT_EXPECTED
    return None


def debug_enabled(ctx: click.Context | None) -> bool:
    root = ctx.find_root() if ctx is not None else None
    flag = bool(root is not None and isinstance(root.obj, dict) and root.obj.get("debug"))
    return flag or os.environ.get("SAMMOE_DEBUG", "").strip() not in ("", "0")


def as_failure(e: BaseException, ctx: click.Context | None) -> Failure | None:
    """The :class:`Failure` to raise instead of ``e`` (None: re-raise ``e`` as it is)."""
    if isinstance(
        e, (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, KeyboardInterrupt, SystemExit)
    ):
        return None
    known = describe_failure(e)
    if known is not None:
        return Failure(*known)
    if debug_enabled(ctx):
        return None
    return Failure(
        f"internal error ({type(e).__name__}: {_one_line(str(e))[:300]}); rerun with --debug for the traceback "
        "and please report it",
        EXIT_BUG,
    )


def invoke_guarded(invoke: Any, ctx: click.Context) -> Any:
    """Run ``invoke(ctx)`` inside the error boundary."""
    try:
        return invoke(ctx)
    except BaseException as e:  # noqa: BLE001 - this is the boundary
        failure = as_failure(e, ctx)
        if failure is None:
            raise
        raise failure from None
