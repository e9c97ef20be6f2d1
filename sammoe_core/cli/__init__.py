"""The ``sammoe`` command line: a thin click layer over the public API.

Command modules import only click at top level; torch, monai and the network load inside the
command that needs them, so ``sammoe --help`` stays fast. Plugin commands (hook
``register_commands``) are looked up only when a name is not one of sammoe's own commands or
when the commands are listed.
"""

from __future__ import annotations

from typing import Any

import click

from sammoe_core import __version__
from sammoe_core.cli.add_expert import add_expert
from sammoe_core.cli.bundle import bundle
from sammoe_core.cli.cache import cache
from sammoe_core.cli.convert import convert
from sammoe_core.cli.evaluate import evaluate
from sammoe_core.cli.experts import experts
from sammoe_core.cli.export import export
from sammoe_core.cli.export_onnx import export_onnx
from sammoe_core.cli.finetune import finetune
from sammoe_core.cli.foundation import foundation
from sammoe_core.cli.new_plugin import new_plugin
from sammoe_core.cli.phantoms import phantoms
from sammoe_core.cli.plugins import plugins
from sammoe_core.cli.publish import publish
from sammoe_core.cli.retrain_gate import retrain_gate
from sammoe_core.cli.segment import segment
from sammoe_core.cli.view import view


class SammoeGroup(click.Group):
    """A click group that adds the commands plugins register, without replacing its own."""

    _plugin_commands: tuple[Any, dict[str, click.Command]] | None = None

    def plugin_commands(self) -> dict[str, click.Command]:
        from sammoe_core.plugins.host import collect_commands, get_host

        host = get_host()
        if self._plugin_commands is None or self._plugin_commands[0] is not host:
            self._plugin_commands = (host, collect_commands(host, self.commands))
        return self._plugin_commands[1]

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.plugin_commands()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self.commands.get(name) or self.plugin_commands().get(name)

    def invoke(self, ctx: click.Context) -> Any:
        """Every command, plugin commands included, runs inside the one error boundary."""
        from sammoe_core.cli.errors import invoke_guarded

        return invoke_guarded(super().invoke, ctx)


@click.group(cls=SammoeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sammoe")
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error (also SAMMOE_DEBUG=1).")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """SAM-Med3D mixture of experts: segment 3D medical volumes from clicks."""
    ctx.obj = {**(ctx.obj or {}), "debug": debug}


main.add_command(convert)
main.add_command(segment)
main.add_command(add_expert)
main.add_command(experts)
main.add_command(plugins)
main.add_command(foundation)
main.add_command(new_plugin)
main.add_command(phantoms)
main.add_command(finetune)
main.add_command(retrain_gate)
main.add_command(export)
main.add_command(publish)
main.add_command(evaluate)
main.add_command(cache)
main.add_command(bundle)
main.add_command(export_onnx)
main.add_command(view)
