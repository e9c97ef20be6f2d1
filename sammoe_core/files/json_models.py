"""Reading a small JSON manifest into its pydantic model, every failure one line naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from sammoe_core.errors import SammoeError

Model = TypeVar("Model", bound=BaseModel)


def read_json_model(
    path: Path, model: type[Model], what: str, missing: str, error: type[SammoeError] = SammoeError
) -> Model:
    """``path`` parsed and validated as ``model``; ``what`` names it in messages ("gate manifest"),
    ``missing`` is the message when the file does not exist. A FIFO or device is refused before
    it is opened; deep nesting, bad encoding, bad JSON and the first validation problem are each
    an ``error`` naming the file."""
    from sammoe_core.io.limits import regular_file

    try:
        regular_file(path, what)  # a FIFO would hang the read
        return model.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except RecursionError:
        raise error(f"{path}: unreadable {what} (nested too deeply)") from None
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        raise error(f"{path}: unreadable {what} ({reason})") from None
    except json.JSONDecodeError as e:
        raise error(f"{path}: unreadable {what} (not JSON: {e.msg})") from None
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "file"
        raise error(f"{path}: invalid {what}: {where}: {first['msg']}") from None
