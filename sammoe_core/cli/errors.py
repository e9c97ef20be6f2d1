"""Turn expected failures into one clear line on stderr and exit code 2."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from ..atomic import OutputExistsError
from ..errors import SammoeError

EXPECTED = (SammoeError, OutputExistsError, FileNotFoundError, PermissionError, IsADirectoryError)


class BadInput(click.ClickException):
    exit_code = 2


def one_line_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for commands: expected exceptions become ``Error: <message>`` and exit 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EXPECTED as e:
            msg = " ".join(str(e).split()) or type(e).__name__
            raise BadInput(msg) from None

    return wrapper
