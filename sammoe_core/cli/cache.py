"""``sammoe cache``: how much the caches under SAMMOE_HOME hold, and clearing them."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

_KINDS = ("volumes", "gate", "file-hashes")


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def _paths() -> dict[str, Path]:
    from sammoe_core.home import Home

    home = Home.current()
    home.check_readable()
    return {"volumes": home.volume_cache, "gate": home.gate_cache, "file-hashes": home.file_hashes}


@click.group("cache")
def cache() -> None:
    """Show or clear sammoe's caches (resampled datasets, gate features, weight hashes)."""


@cache.command("info")
def info() -> None:
    """Size of each cache, in MB (they are rebuilt on demand)."""
    paths = _paths()
    total = 0
    click.echo(f"{'CACHE':<12} {'MB':>10}  PATH")
    for kind, path in paths.items():
        size = _size(path)
        total += size
        click.echo(f"{kind:<12} {size / 1e6:>10.1f}  {path}")
    click.echo(f"{'total':<12} {total / 1e6:>10.1f}")


@cache.command("clear")
@click.argument("kinds", nargs=-1, type=click.Choice(_KINDS))
def clear(kinds: tuple[str, ...]) -> None:
    """Delete the named caches (default: all of them)."""
    paths = _paths()
    for kind in kinds or _KINDS:
        path = paths[kind]
        size = _size(path)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        click.echo(f"cleared {kind}: {size / 1e6:.1f} MB")
