"""``sammoe view``: open a volume in the browser and segment it with clicks (see docs/view.md)."""

from __future__ import annotations

from pathlib import Path

import click

from sammoe_core.cli.policy_options import model_options, policy_options, run_options, use_threads
from sammoe_core.errors import SammoeError


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
    weights: str | None,
    config_name: str | None,
    bundle: str | None,
    allow_unverified: bool,
    precision: str,
    crop_batch: int | None,
    cuda_graphs: bool,
    policy: str,
    tau: float,
    top_k: int,
    policy_option: tuple[str, ...],
    expert: str | None,
    strict: bool,
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
    from sammoe_core.segmentation.predictor_spec import PredictorSpec
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
    options = policy_options(click.get_current_context(), tau, top_k, policy_option)
    spec = PredictorSpec(
        weights,
        config_name,
        device,
        policy,
        tuple(options.items()),
        expert,
        strict,
        allow_unverified,
        bundle,
        precision,
        crop_batch=crop_batch,
        cuda_graphs=cuda_graphs,
    )
    volume = read_volume(volume_path, max_voxels)
    session = Session(volume, _build_predictor(spec), modality=modality)
    model_flags: list[str] = []
    if weights:
        model_flags += ["--weights", weights] + (["--config", config_name] if config_name else [])
        model_flags += ["--allow-unverified"] if allow_unverified else []
    if bundle:
        model_flags += ["--bundle", bundle]
    if precision != "auto":
        model_flags += ["--precision", precision]
    if crop_batch is not None:
        model_flags += ["--crop-batch", str(crop_batch)]
    if not cuda_graphs:
        model_flags += ["--no-cuda-graphs"]
    if modality != "auto":
        model_flags += ["--modality", modality]
    plan = SavePlan(save_to, volume_path, tuple(model_flags), overwrite)
    policy_state = {"policy": "fixed" if expert else policy, "options": options, "expert": expert}
    state = ViewerState(session, plan, policy=policy_state)
    token = server.new_token() if server.needs_token(host) else None
    app = create_app(state, token)
    url = server.url_of(host, port, token)

    def ready() -> None:
        click.echo(f"sammoe view: {url}  (Ctrl-C stops; Save writes {save_to})")
        if not no_browser:
            server.open_browser(url)

    server.serve(app, host, port, ready)
