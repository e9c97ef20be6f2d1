"""``sammoe phantoms``: write a labelled dataset of synthetic torso phantoms."""

from __future__ import annotations

from typing import Literal

import click


@click.command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--n", "n", type=click.IntRange(min=1), required=True, help="Number of cases.")
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    required=True,
    help="Dataset seed (case i uses a seed derived from it and i).",
)
@click.option(
    "--contrast",
    type=click.Choice(["ct", "mr"]),
    default="ct",
    show_default=True,
    help="CT-like (HU) or MR-like intensities.",
)
@click.option(
    "--style",
    type=click.Choice(["train", "heldout"]),
    default="train",
    show_default=True,
    help="Generator configuration: the one training data comes from, or the held-out one.",
)
@click.option("--overwrite", is_flag=True, help="Replace the dataset in a non-empty OUT_DIR.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def phantoms(
    out_dir: str, n: int, seed: int, contrast: Literal["ct", "mr"], style: str, overwrite: bool, quiet: bool
) -> None:
    """Generate N phantoms into OUT_DIR (dataset.json, images/, labels/, tissues/), deterministic per seed."""
    from sammoe_core.phantoms import write_phantom_dataset

    written = write_phantom_dataset(
        out_dir, n=n, seed=seed, contrast=contrast, overwrite=overwrite, progress=not quiet, style=style
    )
    click.echo(
        f"{out_dir}: {len(written)} {contrast} phantom(s) ({style} style), dataset.json + images/ + labels/ + tissues/"
    )
