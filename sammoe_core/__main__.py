"""``python -m sammoe_core`` runs the ``sammoe`` command line."""

from sammoe_core.cli import main

main(prog_name="sammoe")
