"""``sammoe segment``: volumes in, label maps on the exact input grid out (one file or a folder)."""

from __future__ import annotations

from typing import Any

import click

from sammoe_core.cli.policy_options import flag_error, model_options, model_spec, run_options, use_threads
from sammoe_core.errors import SammoeError


def _numbers(count: int, what: str) -> Any:
    def parse(ctx: click.Context, param: click.Parameter, values: Any) -> Any:
        def one(text: str) -> tuple[float, ...]:
            parts = text.replace(" ", "").split(",")
            try:
                numbers = tuple(float(p) for p in parts)
            except ValueError:
                numbers = ()
            if len(numbers) != count:
                raise click.BadParameter(f"{text!r} is not {what}")
            return numbers

        if values is None:
            return None
        return [one(v) for v in values] if isinstance(values, tuple) else one(values)

    return parse


_POINT = _numbers(3, "X,Y,Z")


def _build_predictor(spec: Any) -> Any:
    """Build the predictor a :class:`~sammoe_core.segmentation.predictor_spec.PredictorSpec` names; a stale
    or missing gate is a warning line on stderr."""
    import warnings

    from sammoe_core.moe.segmenter import MoEWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MoEWarning)
        try:
            predictor = spec.build()
        except Exception as e:
            raise flag_error(e) from None
    for w in caught:
        click.echo(f"Warning: {w.message}", err=True)
    return predictor


def _targets(
    prompts_file: str | None,
    points: list[tuple[float, ...]],
    negative_points: list[tuple[float, ...]],
    points_mm: list[tuple[float, ...]],
    negative_points_mm: list[tuple[float, ...]],
    box: tuple[float, ...] | None,
    label_name: str | None,
) -> Any:
    """The targets the options describe, or None when none were given."""
    from sammoe_core.segmentation.prompts import PromptError, load_prompts, make_targets

    given = points or negative_points or points_mm or negative_points_mm or box
    if prompts_file is not None:
        if given or label_name:
            raise PromptError(f"{prompts_file}: give either --prompts or --point/--box/--label-name, not both")
        return load_prompts(prompts_file)
    if not given:
        return None
    target = {
        "name": label_name or "target",
        "points": points,
        "negative_points": negative_points,
        "points_mm": points_mm,
        "negative_points_mm": negative_points_mm,
        "box": box,
    }
    return make_targets([target])


def _summary(record: dict[str, Any]) -> str:
    lines = [
        f"label {t['label']} {t['name']!r}: {t['voxel_count']} voxels ({t['volume_ml']:.1f} ml), "
        f"{t['crops']} crop{'s' if t['crops'] != 1 else ''}"
        for t in record["targets"]
    ]
    lines.append("wrote " + ", ".join(record["outputs"].values()))
    return "\n".join(lines)


def _segment_batch(
    source: str,
    output: str,
    spec: Any,
    targets: Any,
    shard: str | None,
    engine: str,
    ray_address: str | None,
    workers: int,
    gpus_per_worker: float,
    items_per_call: int,
    *,
    quiet: bool,
    **settings: Any,
) -> None:
    """A folder or manifest through the local loop or Ray; one summary line; exit 2 on failures."""
    from sammoe_core.distributed import LocalEngine, SegmentSettings, segment_batch
    from sammoe_core.distributed.item import describe_predictor

    settings_ = SegmentSettings(prompts=None if targets is None else tuple(targets), **settings)
    if engine == "ray":
        from sammoe_core.distributed.ray_engine import RayEngine
        from sammoe_core.distributed.ray_support import RayOptions, import_ray

        import_ray()
        description = describe_predictor(_build_predictor(spec.on("cpu")))  # checks the model before Ray starts
        options = RayOptions(
            address=ray_address,
            workers=workers,
            gpus_per_worker=gpus_per_worker,
            items_per_call=items_per_call,
            quiet=quiet,
        )
        runner: Any = RayEngine(spec, options, description)
    else:
        runner = LocalEngine(_build_predictor(spec))
    from sammoe_core.distributed.run import UNCHANGED

    report = segment_batch(source, output, runner, settings_, shard=shard, quiet=quiet)
    for case in report.cases:
        if case["status"] == "skipped" and case["reason"] != UNCHANGED:
            click.echo(f"{case['case']}: skipped: {case['reason']}", err=True)
    counts = report.counts
    if not quiet:
        click.echo(
            f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed "
            f"({report.volumes_per_minute:.1f} volumes/min); report {report.report_path}"
        )
    if counts["failed"]:
        raise SammoeError(f"{source}: {counts['failed']} of {len(report.cases)} cases failed; see {report.report_path}")


@click.command()
@click.argument("input_path", metavar="INPUT")
@click.option(
    "-o",
    "--output",
    required=True,
    help="Label map (.nii.gz/.nii, or .dcm: a DICOM SEG of a DICOM series INPUT), or a folder when INPUT is a "
    "folder or a manifest.",
)
@click.option(
    "--point", multiple=True, callback=_POINT, metavar="X,Y,Z", help="Positive click, voxel indices of INPUT (0-based)."
)
@click.option(
    "--negative-point", multiple=True, callback=_POINT, metavar="X,Y,Z", help="Negative click, voxel indices."
)
@click.option("--point-mm", multiple=True, callback=_POINT, metavar="X,Y,Z", help="Positive click, world RAS mm.")
@click.option(
    "--negative-point-mm", multiple=True, callback=_POINT, metavar="X,Y,Z", help="Negative click, world RAS mm."
)
@click.option(
    "--box", callback=_numbers(6, "X0,Y0,Z0,X1,Y1,Z1"), metavar="X0,Y0,Z0,X1,Y1,Z1", help="Box corners, voxel indices."
)
@click.option(
    "--box-as-click", is_flag=True, help="On a network without box embeddings, use a box's centre as a click."
)
@click.option(
    "--prompts",
    "prompts_file",
    type=click.Path(dir_okay=False),
    help="JSON file of named targets (see docs/coordinates.md).",
)
@click.option("--label-name", help="Name of the target given by --point/--box (label 1).")
@click.option("--probabilities", is_flag=True, help="Also write OUT.probabilities.nii.gz (float).")
@click.option("--split", is_flag=True, help="Also write one 0/1 mask per target: OUT/NAME.nii.gz (input grid).")
@click.option(
    "--statistics",
    is_flag=True,
    help="Also write OUT.statistics.json (and the sidecar): volume, intensities, bounding box per target.",
)
@click.option(
    "--preview",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[OUT.png]",
    help="Write a PNG of three slices per target (default OUT.png).",
)
@run_options
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (else they are kept; batches skip them).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@model_options
@click.option(
    "--clicks",
    "click_policy",
    type=click.Choice(["newest", "all"]),
    default="newest",
    show_default=True,
    help="newest: each click alone + previous logits (as trained); all: every click so far.",
)
@click.option(
    "--shard",
    metavar="I/N",
    help="Batch: only shard I of N (0-based), e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT.",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Batch: this process, or a Ray actor pool (pip install 'sammoe[ray]').",
)
@click.option("--ray-address", metavar="ADDR", help="Ray: a running cluster (e.g. auto); default: start Ray here.")
@click.option(
    "--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Ray: actors, each with its own model."
)
@click.option(
    "--num-gpus-per-worker",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Ray: GPUs per actor (1 = one GPU each; 0.5 = two actors share one).",
)
@click.option(
    "--items-per-call",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Ray: volumes an actor takes at once (more: it reads the next and writes the last while segmenting).",
)
def segment(
    input_path: str,
    output: str,
    point: list[tuple[float, ...]],
    negative_point: list[tuple[float, ...]],
    point_mm: list[tuple[float, ...]],
    negative_point_mm: list[tuple[float, ...]],
    box: tuple[float, ...] | None,
    max_voxels: int | None,
    box_as_click: bool,
    prompts_file: str | None,
    label_name: str | None,
    modality: str,
    probabilities: bool,
    split: bool,
    statistics: bool,
    preview: str | None,
    device: str,
    threads: int | None,
    overwrite: bool,
    quiet: bool,
    click_policy: str,
    shard: str | None,
    engine: str,
    ray_address: str | None,
    workers: int,
    num_gpus_per_worker: float,
    items_per_call: int,
    **model: Any,
) -> None:
    """Segment INPUT (a NIfTI file, a DICOM series folder, a folder of volumes, or a CSV/JSONL
    manifest of volumes) from clicks.

    The label map lands on INPUT's exact grid (same shape, affine, qform/sform), with a sidecar
    OUT.json recording labels, prompts in voxels and mm, model, modality decision and timings.
    For a batch, each case uses the given points or its own prompts file; OUT/sammoe-manifest.jsonl
    records every case's status, so rerunning does only what is missing (see docs/scaling.md).
    """
    from sammoe_core.distributed import is_batch_input, segment_file
    from sammoe_core.io.outputs import planned_outputs
    from sammoe_core.io.volumes import read_volume
    from sammoe_core.segmentation.prompts import make_targets, resolve_target

    use_threads(threads)
    targets = _targets(prompts_file, point, negative_point, point_mm, negative_point_mm, box, label_name)
    spec = model_spec(device, model)
    if is_batch_input(input_path):
        if preview:
            raise SammoeError(f"{input_path}: in batch mode --preview takes no path (previews go beside each output)")
        _segment_batch(
            input_path,
            output,
            spec,
            targets,
            shard,
            engine,
            ray_address,
            workers,
            num_gpus_per_worker,
            items_per_call,
            modality=modality,
            clicks=click_policy,
            preview=preview is not None,
            probabilities=probabilities,
            statistics=statistics,
            split=split,
            overwrite=overwrite,
            quiet=quiet,
            box_as_click=box_as_click,
            max_voxels=max_voxels,
        )
        return
    if shard is not None or engine != "local":
        raise SammoeError(
            f"{input_path}: --shard and --engine ray take a folder of volumes or a manifest (.csv/.jsonl)"
        )
    if targets is None:
        raise SammoeError(f"{input_path}: no prompts; pass --point X,Y,Z, --point-mm, --box or --prompts FILE.json")
    preview_arg = True if preview == "" else preview
    targets = make_targets(targets)
    planned_outputs(
        output,
        input_path,
        [t.name for t in targets],
        preview=preview_arg,
        probabilities=probabilities,
        statistics=statistics,
        split=split,
        overwrite=overwrite,
    )
    volume = read_volume(input_path, max_voxels)  # every input check (header first) before the model loads
    for target in targets:  # prompts inside the volume, also before the model loads
        resolve_target(target, volume.affine, volume.shape, volume.source)
    predictor = _build_predictor(spec)
    record = segment_file(
        input_path,
        output,
        predictor,
        targets,
        volume=volume,
        modality=modality,
        clicks=click_policy,
        preview=preview_arg,
        probabilities=probabilities,
        statistics=statistics,
        split=split,
        overwrite=overwrite,
        progress=not quiet,
        box_as_click=box_as_click,
    )
    if not quiet:
        click.echo(_summary(record))
