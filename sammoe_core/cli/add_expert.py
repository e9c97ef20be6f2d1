"""``sammoe add-expert SOURCE``: an expert folder, a Hub repo, a pip requirement, a plugin project or a wheel."""

from __future__ import annotations

import dataclasses
import json
import sys

import click


@click.command("add-expert")
@click.argument("source")
@click.option("-U", "--upgrade", is_flag=True, help="pip: upgrade the plugin if it is installed.")
@click.option("-e", "--editable", is_flag=True, help="pip: install a plugin project in editable mode.")
@click.option("--overwrite", is_flag=True, help="Replace an expert added before (folder or Hub) under the same name.")
@click.option("-q", "--quiet", is_flag=True, help="No download progress bars (Hub).")
def add_expert(source: str, upgrade: bool, editable: bool, overwrite: bool, quiet: bool) -> None:
    """Add the expert(s) in SOURCE and mark the gate stale.

    SOURCE is a folder holding expert.json + model.safetensors (checked, then copied into
    SAMMOE_HOME), a Hub repo hf://ORG/NAME[@REVISION] (downloaded into the local Hub cache,
    checked, copied; offline with SAMMOE_OFFLINE=1 or HF_HUB_OFFLINE=1 it is taken from the
    cache), or anything pip installs: a requirement such as sammoe-expert-x, a plugin project
    folder, a wheel. pip runs in sammoe's own interpreter.
    """
    from sammoe_core.experts.manage import add_expert as add

    progress = not quiet and sys.stderr.isatty()
    result = add(source, upgrade=upgrade, editable=editable, overwrite=overwrite, progress=progress)
    click.echo(json.dumps(dataclasses.asdict(result), indent=2))
