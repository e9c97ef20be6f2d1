"""``sammoe foundation list|set``: the foundation networks known and the one experts run on."""

from __future__ import annotations

import json
import sys

import click


@click.group()
def foundation() -> None:
    """List foundations and choose the one in use."""


@foundation.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
def list_foundations(as_json: bool) -> None:
    """Registered foundations and a chosen weights file; '*' marks the one in use."""
    from sammoe_core.experts.foundations import describe_foundations

    rows = describe_foundations()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo("no foundation (choose one: `sammoe foundation set PATH`)")
    else:
        click.echo(_table(rows))


COLUMNS = ("name", "config", "sha256", "weights")


def _table(rows: list[dict[str, object]]) -> str:
    """A header line, then one aligned line per foundation; '*' in the first column marks the one in use."""
    lines = [["", *(c.upper() for c in COLUMNS)]]
    for r in rows:
        lines.append(
            ["*" if r["in_use"] else "", str(r["name"]), str(r["config"]), str(r["sha256"])[:12], str(r["weights"])]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in lines)


@foundation.command("set")
@click.argument("name_or_path")
@click.option("--config", default=None, help="Network config of a .pth fetched from the Hub (default: detected).")
@click.option("-q", "--quiet", is_flag=True, help="No download progress bars (Hub).")
def set_foundation(name_or_path: str, config: str | None, quiet: bool) -> None:
    """Use NAME (a registered foundation), PATH (a sammoe .safetensors file) or a Hub file
    hf://ORG/REPO[@REVISION]/FILE.pth (or .safetensors): downloaded into the local Hub cache,
    converted once to safetensors under SAMMOE_HOME, e.g. hf://blueyo0/SAM-Med3D/sam_med3d_turbo.pth."""
    from sammoe_core.experts.foundations import choose_foundation

    spec = choose_foundation(name_or_path, config=config, progress=not quiet and sys.stderr.isatty())
    click.echo(json.dumps(spec.model_dump(mode="json"), indent=2))
