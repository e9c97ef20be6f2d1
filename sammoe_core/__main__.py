"""``python -m sammoe_core`` runs the ``sammoe`` command line."""

from .cli import main

main(prog_name="sammoe")
