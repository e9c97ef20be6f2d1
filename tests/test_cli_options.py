"""Every command spells its shared options the same way (`-q/--quiet`, `--overwrite`)."""

from __future__ import annotations

import click

from sammoe_core.cli import main


def _commands(group: click.Group, prefix: str = ""):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix}{name} ")
        elif command is not None:
            yield f"{prefix}{name}", command


def test_every_quiet_flag_also_answers_to_q():
    seen = 0
    for name, command in _commands(main):
        for param in command.params:
            if "--quiet" in getattr(param, "opts", []):
                seen += 1
                assert "-q" in param.opts, f"sammoe {name}: --quiet without -q"
    assert seen >= 5
