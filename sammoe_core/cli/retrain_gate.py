"""``sammoe retrain-gate``: train the gate for the foundation in use and the enabled experts."""

from __future__ import annotations

import json
import sys

import click


@click.command("retrain-gate")
@click.option(
    "--data",
    "data",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Labelled dataset folder (dataset.json, images/, labels/); repeatable.",
)
@click.option("--epochs", type=click.IntRange(min=1), default=80, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option(
    "--prompts-per-class",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Clicks drawn per class and case.",
)
@click.option(
    "--gate", "architecture", default="mlp", show_default=True, help="Gate architecture (plugins may add more)."
)
@click.option(
    "--margin", type=float, default=0.02, show_default=True, help="Dice within which the foundation wins ties."
)
@click.option("--no-calibration", is_flag=True, help="Ignore the calibration sets experts ship.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Training prompts per batched network pass while filling the cache [default: 8 on a GPU, 1 on a CPU].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Fill the cache here, or on a Ray actor pool (pip install 'sammoe[ray]'); the gate trains here.",
)
@click.option("--ray-address", metavar="ADDR", help="Ray: a running cluster (e.g. auto); default: start Ray here.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Ray: actors, each with the candidates loaded.",
)
@click.option(
    "--num-gpus-per-worker", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Ray: GPUs per actor."
)
def retrain_gate(
    data: tuple[str, ...],
    epochs: int,
    device: str,
    prompts_per_class: int,
    architecture: str,
    margin: float,
    no_calibration: bool,
    seed: int,
    batch_size: int | None,
    as_json: bool,
    quiet: bool,
    engine: str,
    ray_address: str | None,
    workers: int,
    num_gpus_per_worker: float,
) -> None:
    """Run every candidate on every training prompt (cached), fit the gate, make it current."""
    from sammoe_core.moe.retrain import retrain_gate as run

    ray = None
    if engine == "ray":
        from sammoe_core.distributed.ray_support import RayOptions

        ray = RayOptions(address=ray_address, workers=workers, gpus_per_worker=num_gpus_per_worker, quiet=quiet)
    report = run(
        list(data),
        epochs=epochs,
        device=device,
        prompts_per_class=prompts_per_class,
        architecture=architecture,
        margin=margin,
        seed=seed,
        use_calibration=not no_calibration,
        progress=not quiet and sys.stderr.isatty(),
        ray=ray,
        batch_size=batch_size,
    )
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.table())
