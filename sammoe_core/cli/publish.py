"""``sammoe publish NAME --repo-id ORG/NAME``: an expert to the Hugging Face Hub, one commit and a tag."""

from __future__ import annotations

import dataclasses
import json
import sys

import click


@click.command()
@click.argument("name")
@click.option("--repo-id", required=True, help="Model repo ORG/NAME (created if missing).")
@click.option("--private", is_flag=True, help="Create the repo private (an existing repo keeps its visibility).")
@click.option("--revision", default=None, help="Tag for this version (default: the manifest's version).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def publish(name: str, repo_id: str, private: bool, revision: str | None, quiet: bool) -> None:
    """Publish expert NAME (or the expert folder at path NAME) to the Hub repo --repo-id.

    The expert is checked and exported (see `sammoe export`), uploaded as one commit and tagged.
    The token is huggingface_hub's own (`hf auth login`, or HF_TOKEN); sammoe never prints it.
    """
    from sammoe_core.hub.export import find_expert
    from sammoe_core.hub.publish import publish_expert

    result = publish_expert(
        find_expert(name), repo_id, private=private, revision=revision, progress=not quiet and sys.stderr.isatty()
    )
    click.echo(json.dumps(dataclasses.asdict(result), indent=2))
