"""``sammoe finetune``: make an expert from the foundation and labelled volumes."""

from __future__ import annotations

import json
import sys
from typing import Any

import click


@click.command()
@click.option(
    "--data",
    "data",
    multiple=True,
    required=True,
    type=click.Path(file_okay=False),
    help="Labelled dataset folder (dataset.json, images/, labels/); repeatable.",
)
@click.option("--name", required=True, help="Expert name (lowercase slug).")
@click.option("--classes", required=True, help="Comma-separated dataset classes the expert is for.")
@click.option("-o", "--output", "output", type=click.Path(file_okay=False), help="Expert folder (default: ./NAME).")
@click.option(
    "--parts",
    type=click.Choice(["decoder", "all"]),
    default="decoder",
    show_default=True,
    help="decoder: prompt encoder + mask decoder (encoder shared); all: every tensor.",
)
@click.option("--foundation", default=None, help="Foundation name or weights file (default: the one in use).")
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True)
@click.option(
    "--clicks",
    "num_clicks",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Simulated clicks per sample.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option(
    "--calibration", type=click.Path(file_okay=False), help="Dataset folder shipped with the expert for gate training."
)
@click.option("--modality", type=click.Choice(["ct", "mr", "any"]), default="any", show_default=True)
@click.option("--license", "license_", default="Apache-2.0", show_default=True, help="SPDX licence of the expert.")
@click.option("--author", "authors", multiple=True, help="Author (repeatable).")
@click.option("--description", default=None)
@click.option("--version", "version", default="0.1.0", show_default=True)
@click.option("--run-dir", type=click.Path(file_okay=False), help="Training run folder (default: OUTPUT.run; resumes).")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    help="Where volumes are cached on the model lattice (default: SAMMOE_HOME/cache/volumes).",
)
@click.option(
    "--synthesis/--no-synthesis",
    default=False,
    show_default=True,
    help="Train on images synthesised from the label (and tissue) maps with random contrasts.",
)
@click.option(
    "--box-prob",
    type=click.FloatRange(0, 1),
    default=None,
    help="Share of interactions started from a box (default 0.25 on a box-capable foundation).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing expert folder.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def finetune(
    data: tuple[str, ...],
    name: str,
    classes: str,
    output: str | None,
    parts: str,
    foundation: str | None,
    steps: int,
    batch_size: int,
    lr: float,
    num_clicks: int,
    seed: int,
    device: str,
    calibration: str | None,
    modality: str,
    license_: str,
    authors: tuple[str, ...],
    description: str | None,
    version: str,
    run_dir: str | None,
    cache_dir: str | None,
    synthesis: bool,
    box_prob: float | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Finetune the foundation on --data for --classes and write an expert folder (delta + expert.json)."""
    from sammoe_core.training.finetune import finetune_expert

    fields: dict[str, Any] = {"modality": modality, "license": license_, "version": version}
    if authors:
        fields["authors"] = tuple(authors)
    if description:
        fields["description"] = description
    report = finetune_expert(
        data,
        name,
        output or name,
        [c.strip() for c in classes.split(",") if c.strip()],
        parts=parts,
        foundation=foundation,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        num_clicks=num_clicks,
        device=device,
        seed=seed,
        run_dir=run_dir,
        cache_dir=cache_dir,
        calibration=calibration,
        overwrite=overwrite,
        progress=not quiet and sys.stderr.isatty(),
        synthesis=synthesis,
        box_prob=box_prob,
        **fields,
    )
    click.echo(json.dumps(report.to_dict(), indent=2))
