"""``sammoe view``: open a volume in the browser and segment it with clicks (see docs/view.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sammoe_core.cli.policy_options import model_options, model_spec, run_options, use_threads
from sammoe_core.errors import SammoeError

if TYPE_CHECKING:
    from sammoe_core.segmentation.predictor_spec import PredictorSpec


def _model_flags(spec: PredictorSpec) -> list[str]:
    """The `sammoe segment` flags that build the model ``spec`` describes (the policy is the page's)."""
    flags: list[str] = []
    if spec.weights:
        flags += ["--weights", spec.weights] + (["--config", spec.config] if spec.config else [])
        flags += ["--allow-unverified"] if spec.allow_unverified else []
    if spec.bundle:
        flags += ["--bundle", spec.bundle]
    if spec.precision != "auto":
        flags += ["--precision", spec.precision]
    if spec.crop_batch is not None:
        flags += ["--crop-batch", str(spec.crop_batch)]
    if not spec.cuda_graphs:
        flags += ["--no-cuda-graphs"]
    return flags


def _default_output(volume: str) -> Path:
    name = Path(volume.rstrip("/\\")).name or "volume"
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return Path(f"{name}_seg.nii.gz")


@click.command()
@click.argument("volume_path", metavar="VOLUME")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="0: any free port.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Listen address; anything but 127.0.0.1/localhost requires the printed token in the URL.",
)
@click.option("--no-browser", is_flag=True, help="Only print the URL (e.g. on a remote machine behind ssh -L).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Where Save writes the label map (default VOLUME_seg.nii.gz here); sidecar and prompts file beside it.",
)
@click.option("--overwrite", is_flag=True, help="Let the first Save replace existing files.")
@run_options
@model_options
def view(
    volume_path: str,
    port: int,
    host: str,
    no_browser: bool,
    output: str | None,
    overwrite: bool,
    modality: str,
    max_voxels: int | None,
    device: str,
    threads: int | None,
    **model: Any,
) -> None:
    """Open VOLUME (a NIfTI file or a DICOM series folder) in a local web page: click to segment,
    see the gate's choice among the experts, save what `sammoe segment` would write.

    Takes the same model options as `segment`. Serves only VOLUME, on 127.0.0.1 unless --host
    says otherwise (then with a token). Stop with Ctrl-C; what was saved stays.
    """
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise SammoeError("sammoe view needs the viewer's server: pip install 'sammoe[view]'") from None
    from sammoe_core.cli.segment import _build_predictor
    from sammoe_core.io.outputs import check_outputs, output_paths
    from sammoe_core.io.volumes import read_volume
    from sammoe_core.segmentation.session import Session
    from sammoe_core.viewer import server
    from sammoe_core.viewer.app import create_app
    from sammoe_core.viewer.assets import check_niivue
    from sammoe_core.viewer.state import SavePlan, ViewerState

    check_niivue()
    port = server.check_port(host, port)
    save_to = Path(output) if output else _default_output(volume_path)
    check_outputs(output_paths(save_to), overwrite=True, inputs=(volume_path,))  # the folder; files at Save
    use_threads(threads)
    spec = model_spec(device, model)
    volume = read_volume(volume_path, max_voxels)
    session = Session(volume, _build_predictor(spec), modality=modality)
    model_flags = _model_flags(spec) + (["--modality", modality] if modality != "auto" else [])
    plan = SavePlan(save_to, volume_path, tuple(model_flags), overwrite)
    policy_state = {
        "policy": "fixed" if spec.expert else spec.policy,
        "options": dict(spec.policy_options),
        "expert": spec.expert,
    }
    state = ViewerState(session, plan, policy=policy_state)
    token = server.new_token() if server.needs_token(host) else None
    app = create_app(state, token)
    url = server.url_of(host, port, token)

    def ready() -> None:
        click.echo(f"sammoe view: {url}  (Ctrl-C stops; Save writes {save_to})")
        if not no_browser:
            server.open_browser(url)

    server.serve(app, host, port, ready)
