"""``sammoe evaluate``: Dice per structure for the foundation, each expert, and the MoE."""

from __future__ import annotations

import sys

import click

from sammoe_core.cli.policy_options import flag_error, moe_options, policy_options


@click.command()
@click.option(
    "--data",
    "data",
    multiple=True,
    required=True,
    type=click.Path(file_okay=False),
    help="Labelled dataset folder (dataset.json, images/, labels/); repeatable.",
)
@click.option("--clicks", default="1", show_default=True, help="Click counts to report, e.g. 1,3,5.")
@click.option("--classes", default=None, help="Comma-separated classes (default: all in the dataset).")
@click.option(
    "--prompts-per-class",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="First clicks drawn per class and case.",
)
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write evaluation.json, evaluation.md and evaluation.png here.",
)
@moe_options
@click.option("--device", default="auto", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--first-click",
    type=click.Choice(["random", "deepest"]),
    default="random",
    show_default=True,
    help="First click: uniformly inside the structure (official), or at its deepest voxel (as a user clicks).",
)
@click.option(
    "--next-click",
    type=click.Choice(["largest-error", "random"]),
    default="largest-error",
    show_default=True,
    help="Later clicks: deep in the larger error region (official evaluation), or anywhere in the errors.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Keep the resampled datasets here (default: SAMMOE_HOME/cache/volumes; see `sammoe cache`).",
)
@click.option("--overwrite", is_flag=True, help="Replace existing report files.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def evaluate(
    data: tuple[str, ...],
    clicks: str,
    classes: str | None,
    prompts_per_class: int,
    out_dir: str | None,
    policy: str,
    tau: float,
    top_k: int,
    policy_option: tuple[str, ...],
    expert: str | None,
    device: str,
    seed: int,
    first_click: str,
    next_click: str,
    cache_dir: str | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Simulate clicks from the labels and print Dice per structure (foundation, experts, MoE)."""
    from sammoe_core.errors import SammoeError
    from sammoe_core.evaluation.evaluate import check_report_paths, write_report
    from sammoe_core.evaluation.evaluate import evaluate as run

    try:
        counts = [int(v) for v in clicks.split(",") if v.strip()]
    except ValueError:
        raise SammoeError(f"--clicks {clicks}: expected comma-separated integers such as 1,3,5") from None
    if out_dir:
        check_report_paths(out_dir, overwrite)
    options = policy_options(click.get_current_context(), tau, top_k, policy_option)
    try:
        report = run(
            list(data),
            clicks=counts,
            classes=[c.strip() for c in classes.split(",")] if classes else None,
            prompts_per_class=prompts_per_class,
            device=device,
            policy=policy,
            policy_options=options,
            expert=expert,
            seed=seed,
            progress=not quiet and sys.stderr.isatty(),
            first_click=first_click,
            next_click=next_click,
            cache_dir=cache_dir,
        )
    except Exception as e:
        raise flag_error(e) from None
    for k in report.clicks:
        click.echo(report.markdown(k) + "\n")
    if out_dir:
        paths = write_report(report, out_dir, overwrite=overwrite)
        click.echo("wrote " + ", ".join(str(p) for p in paths.values()))
