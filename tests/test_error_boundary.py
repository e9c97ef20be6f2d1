"""Issue 16.8: the command line's one error boundary. Every expected failure kind is one line and
exit 2; anything else is one line pointing to --debug and exit 1; --debug shows the traceback."""

from __future__ import annotations

import errno

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from sammoe_core.cli import main
from sammoe_core.errors import HubError, InputError, OutputExistsError, PluginError, StateError, WeightsError


class _Model(BaseModel):
    size: int


def _validation_error() -> Exception:
    try:
        _Model(size="many")  # type: ignore[arg-type]
    except Exception as e:  # noqa: BLE001 - the error object is what the test needs
        return e
    raise AssertionError("pydantic accepted a bad value")


EXPECTED = [
    InputError("in.nii.gz: not a volume"),
    WeightsError("w.safetensors: sha256 mismatch"),
    PluginError("plugin x: broken"),
    HubError("the Hub is unreachable"),
    StateError("SAMMOE_HOME: not a folder"),
    OutputExistsError("out.nii.gz: exists"),
    NotADirectoryError(errno.ENOTDIR, "Not a directory", "/tmp/home/experts"),
    FileExistsError(errno.EEXIST, "File exists", "/tmp/x"),
    OSError(errno.ENOSPC, "No space left on device", "/tmp/out.nii.gz"),
    OSError(errno.EROFS, "Read-only file system", "/ro/state.json"),
    MemoryError(),
    RecursionError("maximum recursion depth exceeded"),
    OverflowError("cannot convert float infinity to integer"),
]


def _failing(monkeypatch, error: BaseException) -> None:
    def boom() -> list:
        raise error

    monkeypatch.setattr("sammoe_core.experts.manage.describe_experts", boom)


@pytest.mark.parametrize("error", [*EXPECTED, "validation"], ids=lambda e: type(e).__name__ if e != "validation" else e)
def test_expected_failures_are_one_line_and_exit_2(monkeypatch, error):
    _failing(monkeypatch, _validation_error() if error == "validation" else error)
    result = CliRunner().invoke(main, ["experts", "list"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output
    if isinstance(error, OSError) and error.filename is not None:
        assert error.filename in lines[0]  # names the file
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        assert "no space left" in lines[0]


def test_a_bug_is_one_line_pointing_to_debug_and_debug_shows_the_traceback(monkeypatch):
    _failing(monkeypatch, ZeroDivisionError("division by zero"))
    result = CliRunner().invoke(main, ["experts", "list"])
    assert result.exit_code == 1
    assert "internal error (ZeroDivisionError: division by zero)" in result.output and "--debug" in result.output
    debug = CliRunner().invoke(main, ["--debug", "experts", "list"])
    assert isinstance(debug.exception, ZeroDivisionError)  # re-raised: click prints the traceback
