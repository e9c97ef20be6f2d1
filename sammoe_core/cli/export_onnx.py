"""``sammoe export-onnx OUT``: the network (foundation, or an expert over it) as ONNX files."""

from __future__ import annotations

import click


@click.command("export-onnx")
@click.argument("out", type=click.Path(file_okay=False))
@click.option(
    "--expert", default=None, help="Export this expert (a name or an expert folder) composed over the foundation."
)
@click.option("--overwrite", is_flag=True, help="Replace an existing OUT.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
def export_onnx(out: str, expert: str | None, overwrite: bool, quiet: bool) -> None:
    """Write OUT/encoder.onnx (image encoder) and OUT/decoder.onnx (prompt encoder + mask decoder,
    clicks and a mask prompt) of the foundation in use, or of --expert composed over it, with a
    dynamic batch, and OUT/onnx.json (shapes, hashes, tolerance). Crop sampling, the gate, the
    policy, edge extension and paste-back stay in Python (see docs/deployment.md).
    Needs pip install 'sammoe[onnx]'."""
    import time

    from sammoe_core.deploy.onnx_export import export_onnx as export

    started = time.monotonic()

    def progress(step: str) -> None:
        if not quiet:
            click.echo(f"{step}, {time.monotonic() - started:.0f} s so far", err=True)

    result = export(out, expert=expert, overwrite=overwrite, progress=progress)
    if not quiet:
        files = ", ".join(g["file"] for g in result.manifest["graphs"].values())
        click.echo(f"wrote {result.folder}: {files}, onnx.json ({time.monotonic() - started:.0f} s)")
