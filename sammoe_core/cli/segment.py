"""``sammoe segment``: volumes in, label maps on the exact input grid out (one file or a folder)."""

from __future__ import annotations

from typing import Any

import click

from ..errors import SammoeError
from .errors import one_line_errors


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


def _build_predictor(
    weights: str | None,
    config_name: str | None,
    device: str,
    policy: str = "threshold",
    tau: float = 0.5,
    expert: str | None = None,
    strict: bool = False,
    top_k: int = 2,
) -> Any:
    """The one place the CLI makes its model.

    ``--weights`` runs that one network alone; otherwise the mixture of experts the local state
    describes (the foundation in use, the enabled experts, the current gate, the policy).
    """
    import warnings
    from pathlib import Path

    from ..devices import resolve_device
    from ..hashing import sha256_file
    from ..model.checkpoint import load_model
    from ..predictor import FoundationPredictor

    try:
        dev = resolve_device(device)
    except ValueError as e:
        raise SammoeError(f"--device {device}: {e}") from None
    if weights is None:
        from ..moe.segmenter import StaleGateWarning, build_from_registry

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", StaleGateWarning)
            predictor = build_from_registry(dev, policy=policy, tau=tau, k=top_k, expert=expert, strict=strict)
        for w in caught:
            click.echo(f"Warning: {w.message}", err=True)
        return predictor
    try:
        model = load_model(weights, config=config_name, device=dev)
    except KeyError as e:
        raise SammoeError(f"--config {config_name}: {e.args[0]}") from None
    source = {"weights": Path(weights).name, "weights_sha256": sha256_file(weights)}
    return FoundationPredictor(model, source=source)


def _targets(
    prompts_file: str | None,
    points: list,
    negative_points: list,
    points_mm: list,
    negative_points_mm: list,
    box: tuple | None,
    label_name: str | None,
) -> Any:
    """The targets the options describe, or None when none were given."""
    from ..prompts import PromptError, load_prompts, make_targets

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


@click.command()
@click.argument("input_path", metavar="INPUT")
@click.option("-o", "--output", required=True, help="Label map (.nii.gz/.nii), or a folder when INPUT is a folder.")
@click.option("--point", multiple=True, callback=_POINT, metavar="X,Y,Z", help="Positive click, voxel indices of INPUT (0-based).")
@click.option("--negative-point", multiple=True, callback=_POINT, metavar="X,Y,Z", help="Negative click, voxel indices.")
@click.option("--point-mm", multiple=True, callback=_POINT, metavar="X,Y,Z", help="Positive click, world RAS mm.")
@click.option("--negative-point-mm", multiple=True, callback=_POINT, metavar="X,Y,Z", help="Negative click, world RAS mm.")
@click.option("--box", callback=_numbers(6, "X0,Y0,Z0,X1,Y1,Z1"), metavar="X0,Y0,Z0,X1,Y1,Z1", help="Box corners, voxel indices.")
@click.option("--prompts", "prompts_file", type=click.Path(dir_okay=False), help="JSON file of named targets (see docs/coordinates.md).")
@click.option("--label-name", help="Name of the target given by --point/--box (label 1).")
@click.option("--modality", type=click.Choice(["auto", "ct", "mr"]), default="auto", show_default=True, help="CT gets the [-1000, 1000] HU clamp.")
@click.option("--probabilities", is_flag=True, help="Also write OUT.probabilities.nii.gz (float).")
@click.option("--preview", is_flag=False, flag_value="", default=None, metavar="[OUT.png]", help="Write a PNG of three slices per target (default OUT.png).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (else they are kept; batches skip them).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@click.option("--weights", type=click.Path(dir_okay=False), help="Model weights, a sammoe .safetensors file.")
@click.option("--config", "config_name", help="Network config (default: the one recorded in the weights).")
@click.option("--policy", default="threshold", show_default=True,
              help="Expert selection: threshold, top1, topk-blend, foundation, fixed (or a plugin's).")
@click.option("--tau", type=float, default=0.5, show_default=True, help="Threshold policy: minimum gate probability for an expert.")
@click.option("--top-k", "top_k", type=int, default=2, show_default=True, help="topk-blend: how many candidates to blend.")
@click.option("--expert", default=None, help="Force one expert (policy fixed).")
@click.option("--clicks", "click_policy", type=click.Choice(["newest", "all"]), default="newest", show_default=True,
              help="newest: each click alone + previous logits (as trained); all: every click so far.")
@click.option("--strict", is_flag=True, help="A stale or missing gate is an error instead of a foundation fallback.")
@one_line_errors
def segment(
    input_path: str,
    output: str,
    point: list,
    negative_point: list,
    point_mm: list,
    negative_point_mm: list,
    box: tuple | None,
    prompts_file: str | None,
    label_name: str | None,
    modality: str,
    probabilities: bool,
    preview: str | None,
    device: str,
    overwrite: bool,
    quiet: bool,
    weights: str | None,
    config_name: str | None,
    policy: str,
    tau: float,
    top_k: int,
    expert: str | None,
    click_policy: str,
    strict: bool,
) -> None:
    """Segment INPUT (a NIfTI file, a DICOM series folder, or a folder of volumes) from clicks.

    The label map lands on INPUT's exact grid (same shape, affine, qform/sform), with a sidecar
    OUT.json recording labels, prompts in voxels and mm, model, modality decision and timings.
    For a folder, each case uses the given points or its own <case>.prompts.json.
    """
    from ..batch import is_batch_input, segment_file, segment_folder
    from ..outputs import check_outputs, output_paths

    targets = _targets(prompts_file, point, negative_point, point_mm, negative_point_mm, box, label_name)
    if is_batch_input(input_path):
        if preview:
            raise SammoeError(f"{input_path}: in batch mode --preview takes no path (previews go beside each output)")
        predictor = _build_predictor(weights, config_name, device, policy, tau, expert, strict, top_k)
        report = segment_folder(
            input_path, output, predictor, targets, modality=modality, clicks=click_policy, preview=preview is not None,
            probabilities=probabilities, overwrite=overwrite, quiet=quiet,
        )
        counts = report["counts"]
        if not quiet:
            click.echo(f"{counts['done']} done, {counts['skipped']} skipped, {counts['error']} failed; report {report['report_path']}")
        if counts["error"]:
            raise SammoeError(f"{input_path}: {counts['error']} of {len(report['cases'])} cases failed; see {report['report_path']}")
        return
    if targets is None:
        raise SammoeError(f"{input_path}: no prompts; pass --point X,Y,Z, --point-mm, --box or --prompts FILE.json")
    preview_arg = True if preview == "" else preview
    check_outputs(output_paths(output, preview_arg, probabilities), overwrite)
    predictor = _build_predictor(weights, config_name, device, policy, tau, expert, strict, top_k)
    record = segment_file(
        input_path, output, predictor, targets, modality=modality, clicks=click_policy, preview=preview_arg,
        probabilities=probabilities, overwrite=overwrite, progress=not quiet,
    )
    if not quiet:
        click.echo(_summary(record))
