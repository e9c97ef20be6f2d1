"""``sammoe plugins``: installed plugins as JSON, with the hooks they implement and their errors."""

from __future__ import annotations

import json
from typing import cast

import click


@click.command("plugins")
@click.option("--all", "include_defaults", is_flag=True, help="Include sammoe's default plugins.")
@click.pass_context
def plugins(ctx: click.Context, include_defaults: bool) -> None:
    """List plugins: name, distribution, version, hooks, errors (load or hook failures)."""
    from sammoe_core.plugins.host import get_host, plugins_report

    builtin = cast(click.Group, ctx.find_root().command).commands
    click.echo(json.dumps(plugins_report(get_host(), include_defaults, reserved_commands=builtin), indent=2))
