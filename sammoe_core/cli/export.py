"""``sammoe export NAME DIR``: an expert as its Hub repo folder (manifest, weights, model card), offline."""

from __future__ import annotations

import json

import click


@click.command()
@click.argument("name")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--repo-id", default=None, help="ORG/NAME it will be published as (for the card's usage lines).")
@click.option("--revision", default=None, help="Tag it will be published as (default: the manifest's version).")
@click.option("--overwrite", is_flag=True, help="Replace a previous export in DIRECTORY.")
def export(name: str, directory: str, repo_id: str | None, revision: str | None, overwrite: bool) -> None:
    """Write expert NAME (or the expert folder at path NAME) to DIRECTORY as a Hub repo:
    expert.json, the weights, the calibration folder if any, and a README.md model card.
    No network; upload DIRECTORY yourself or use `sammoe publish`."""
    from sammoe_core.hub.export import export_expert, find_expert

    folder = export_expert(find_expert(name), directory, repo_id=repo_id, revision=revision, overwrite=overwrite)
    files = sorted(p.name for p in folder.iterdir())
    click.echo(json.dumps({"expert": name, "folder": str(folder), "files": files}, indent=2))
