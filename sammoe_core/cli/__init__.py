"""The ``sammoe`` command line: a thin click layer over the public API.

Command modules import only click at top level; torch, monai and the network load inside the
command that needs them, so ``sammoe --help`` stays fast.
"""

from __future__ import annotations

import click

from .. import __version__
from .convert import convert
from .phantoms import phantoms


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sammoe")
def main() -> None:
    """SAM-Med3D mixture of experts: segment 3D medical volumes from clicks."""


main.add_command(convert)
main.add_command(phantoms)
