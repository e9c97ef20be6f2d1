"""``sammoe convert``: an official SAM-Med3D ``.pth`` to a strict, self-describing safetensors file."""

from __future__ import annotations

import json

import click


@click.command()
@click.argument("source", type=click.Path(dir_okay=False))
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--config", "config_name", default=None, help="Network config (default: detected from the keys).")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def convert(source: str, output: str, config_name: str | None, overwrite: bool) -> None:
    """Convert SOURCE (.pth, loaded weights-only) to OUTPUT (.safetensors), checking every key."""
    from sammoe_core.model.checkpoint import convert_checkpoint

    result = convert_checkpoint(source, output, config=config_name, overwrite=overwrite)
    click.echo(
        json.dumps(
            {
                "output": output,
                "config": result.config,
                "tensors": result.num_tensors,
                "elements": result.num_elements,
                "source_sha256": result.source_sha256,
                "sha256": result.output_sha256,
            },
            indent=2,
        )
    )
