"""``sammoe bundle OUT``: the merged MoE (foundation, enabled experts, their gate) as one checked folder."""

from __future__ import annotations

import click


@click.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace an existing OUT.")
def bundle(out: str, overwrite: bool) -> None:
    """Write the foundation in use, every enabled expert and the gate trained for exactly them to
    OUT, with OUT/bundle.json naming the sha256 of every file. `sammoe segment --bundle OUT` then
    runs the same mixture of experts with no expert plugin installed (see docs/deployment.md)."""
    from sammoe_core.deploy.bundle import write_bundle

    report = write_bundle(out, overwrite=overwrite)
    experts = ", ".join(report.manifest.expert_names()) or "none"
    click.echo(
        f"wrote {report.folder}: foundation {report.manifest.foundation.name}, experts {experts}, "
        f"{len(report.manifest.files)} files, {report.size_bytes / 1e6:.1f} MB"
    )
