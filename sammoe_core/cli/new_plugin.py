"""``sammoe new-plugin NAME --expert DIR``: scaffold a pip-installable plugin around an expert folder."""

from __future__ import annotations

import click


@click.command("new-plugin")
@click.argument("name")
@click.option(
    "--expert",
    "expert_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Expert folder (expert.json + model.safetensors).",
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder to create the project in.",
)
@click.option("--overwrite", is_flag=True, help="Replace OUT/NAME if it exists.")
def new_plugin(name: str, expert_dir: str, out_dir: str, overwrite: bool) -> None:
    """Create a plugin project OUT/NAME shipping the expert in DIR.

    NAME is the project's name, such as sammoe-expert-liver. The project holds a pyproject with the
    `sammoe` entry point, a module registering the
    expert, the expert as package data, a test and a README. Install it with
    `sammoe add-expert OUT/NAME`; its test passes as generated. Prints the project's path
    (stdout) and a line naming it and that next step (stderr).
    """
    import shlex

    from sammoe_core.experts.expert import Expert
    from sammoe_core.experts.scaffold import new_plugin as scaffold

    project = scaffold(name, expert_dir, out_dir, overwrite=overwrite)
    click.echo(str(project))  # stdout holds the path alone, for scripts: project=$(sammoe new-plugin ...)
    # pip reads a bare name as a requirement, not a folder: the suggested command gets a ./ prefix.
    shown = str(project) if project.is_absolute() or str(project).startswith(".") else f"./{project}"
    click.echo(
        f"created {shown}: a plugin for expert {Expert.from_folder(expert_dir).name}; "
        f"install it with: sammoe add-expert {shlex.quote(shown)}",
        err=True,
    )
