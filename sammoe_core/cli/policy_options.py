"""The flags several commands share: the volume and run flags (:func:`run_options`), the model
flags (:func:`model_options`) and the MoE flags, mapped onto a policy's options and back.

``--tau`` and ``--top-k`` become the options ``tau`` and ``k`` only when given on the command
line (a policy that does not take them then says so, instead of ignoring them); ``--policy-option
KEY=VALUE`` passes any option of a plugin's policy. An option error from the core names the
option; :func:`flag_error` names the flag the user typed instead.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

if TYPE_CHECKING:
    from sammoe_core.segmentation.predictor_spec import PredictorSpec

FLAG_OF = {"tau": "--tau", "k": "--top-k", "expert": "--expert"}


def _stacked(fn: Any, options: list[Any]) -> Any:
    """``fn`` under ``options``, the first listed first in ``--help``."""
    for option in reversed(options):
        fn = option(fn)
    return fn


def run_options(fn: Any) -> Any:
    """How a volume is read and where the model runs, as ``segment`` and ``view`` take it:
    --modality, --max-voxels, --device, --threads (apply with :func:`use_threads`)."""
    return _stacked(
        fn,
        [
            click.option(
                "--modality",
                type=click.Choice(["auto", "ct", "mr"]),
                default="auto",
                show_default=True,
                help="CT gets the [-1000, 1000] HU clamp.",
            ),
            click.option(
                "--max-voxels",
                type=click.IntRange(min=1),
                default=None,
                help="Refuse volumes larger than this (default 600,000,000 or SAMMOE_MAX_VOXELS).",
            ),
            click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
            click.option(
                "--threads",
                type=click.IntRange(min=1),
                help="CPU threads torch uses (default: torch's choice, the physical cores); recorded in the sidecar.",
            ),
        ],
    )


def use_threads(threads: int | None) -> None:
    """Set torch's CPU threads when --threads was given."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def moe_options(fn: Any) -> Any:
    """The shared options: --policy, --tau, --top-k, --policy-option, --expert."""
    options = [
        click.option(
            "--policy",
            default="threshold",
            show_default=True,
            help="Expert selection: threshold, top1, topk-blend, foundation, fixed (or a plugin's).",
        ),
        click.option(
            "--tau",
            type=float,
            default=0.5,
            show_default=True,
            help="Threshold policy: minimum gate probability for an expert.",
        ),
        click.option(
            "--top-k",
            "top_k",
            type=click.IntRange(min=1),
            default=2,
            show_default=True,
            help="topk-blend: how many candidates to blend.",
        ),
        click.option(
            "--policy-option",
            "policy_option",
            multiple=True,
            metavar="KEY=VALUE",
            help="An option of the policy (JSON value or text), e.g. for a plugin's policy; repeatable.",
        ),
        click.option("--expert", default=None, help="Force one expert (policy fixed)."),
    ]
    return _stacked(fn, options)


def model_options(fn: Any) -> Any:
    """Which model segments, as ``segment`` and ``view`` take it: --weights, --config, --bundle,
    --allow-unverified, --precision, --crop-batch, --cuda-graphs, --strict, then the shared MoE
    options (:func:`moe_options`). A command takes them as ``**model`` and builds its predictor's
    recipe with :func:`model_spec`."""
    options = [
        click.option("--weights", type=click.Path(dir_okay=False), help="Model weights, a sammoe .safetensors file."),
        click.option("--config", "config_name", help="Network config (default: the one recorded in the weights)."),
        click.option(
            "--bundle",
            type=click.Path(file_okay=False),
            help="Run the MoE a `sammoe bundle` folder holds (no plugin needed; every file sha256-checked).",
        ),
        click.option(
            "--allow-unverified",
            is_flag=True,
            help="Load --weights made elsewhere: no content digest, non-finite values allowed.",
        ),
        click.option(
            "--precision",
            type=click.Choice(["auto", "fp32", "bf16"]),
            default="auto",
            show_default=True,
            help="Networks in bf16 autocast (auto: where the GPU or CPU computes bf16 natively) or fp32, "
            "the exact mode.",
        ),
        click.option(
            "--crop-batch",
            type=click.IntRange(min=1),
            default=None,
            help="Crops encoded in one pass (other targets' first crops, queued edge extensions) "
            "[default: 8 on CUDA, 1 on the CPU].",
        ),
        click.option(
            "--cuda-graphs/--no-cuda-graphs",
            default=True,
            show_default=True,
            help="On CUDA, replay the encoders as captured CUDA graphs (no effect on the CPU).",
        ),
        click.option(
            "--strict", is_flag=True, help="A stale or missing gate is an error instead of a foundation fallback."
        ),
    ]
    return _stacked(moe_options(fn), options)


def model_spec(device: str, model: dict[str, Any]) -> PredictorSpec:
    """The predictor the flags of :func:`model_options` name (a command takes them as ``**model``),
    on ``device``."""
    from sammoe_core.segmentation.predictor_spec import PredictorSpec

    options = policy_options(click.get_current_context(), model["tau"], model["top_k"], model["policy_option"])
    return PredictorSpec(
        weights=model["weights"],
        config=model["config_name"],
        device=device,
        policy=model["policy"],
        policy_options=tuple(options.items()),
        expert=model["expert"],
        strict=model["strict"],
        allow_unverified=model["allow_unverified"],
        bundle=model["bundle"],
        precision=model["precision"],
        crop_batch=model["crop_batch"],
        cuda_graphs=model["cuda_graphs"],
    )


def policy_options(ctx: click.Context, tau: float, top_k: int, pairs: tuple[str, ...]) -> dict[str, Any]:
    """The options the user gave: --tau / --top-k when typed, and every --policy-option."""
    out: dict[str, Any] = {}
    if ctx.get_parameter_source("tau") == ParameterSource.COMMANDLINE:
        out["tau"] = tau
    if ctx.get_parameter_source("top_k") == ParameterSource.COMMANDLINE:
        out["k"] = top_k
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--policy-option")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def flag_error(error: Exception) -> Exception:
    """An option error from the core, reworded with the flag that set the option."""
    from sammoe_core.cli.errors import Failure
    from sammoe_core.plugins.factories import OptionError

    if isinstance(error, OptionError):
        flag = FLAG_OF.get(error.option, f"--policy-option {error.option}=...")
        return Failure(f"{flag}: {error}")
    return error
