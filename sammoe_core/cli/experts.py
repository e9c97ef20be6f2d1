"""``sammoe experts list|show|remove|enable|disable``: the experts sammoe knows and their state."""

from __future__ import annotations

import json

import click

COLUMNS = ("name", "version", "enabled", "weights", "modality", "targets", "source")


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(value)
    return str(value)


def _table(rows: list[dict[str, object]]) -> str:
    lines = [[c.upper() for c in COLUMNS], *([_cell(r[c]) for c in COLUMNS] for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in lines)


def _warn_plugin_problems() -> None:
    from sammoe_core.plugins.host import get_host

    n = len(get_host().problems)
    if n:
        click.echo(f"warning: {n} plugin problem(s); `sammoe plugins --all` lists them", err=True)


@click.group()
def experts() -> None:
    """List and manage experts (from plugins and from added folders)."""


@experts.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_experts(as_json: bool) -> None:
    """List every expert, enabled or not."""
    from sammoe_core.experts.manage import describe_experts

    rows = [{**r, "weights": "ok" if r["weights_ok"] else "DAMAGED"} for r in describe_experts()]
    click.echo(
        json.dumps(rows, indent=2)
        if as_json
        else _table(rows)
        if rows
        else "no experts (see `sammoe add-expert --help`)"
    )
    damaged = [r for r in rows if not r["weights_ok"]]
    for row in damaged:
        click.echo(f"warning: {row['weights_problem']}", err=True)
    _warn_plugin_problems()


@experts.command("verify")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
def verify(name: str | None, as_json: bool) -> None:
    """Check every expert (or NAME) in full: weights, digests, tensors, foundation. Exit 2 if one fails."""
    from sammoe_core.errors import SammoeError
    from sammoe_core.experts.manage import verify_experts

    rows = verify_experts(name)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        for row in rows:
            click.echo(f"{row['name']}: ok" if row["ok"] else f"{row['name']}: FAILED: {row['problem']}")
    failed = [r["name"] for r in rows if not r["ok"]]
    if failed:
        raise SammoeError(f"{len(failed)} of {len(rows)} expert(s) failed verification: {', '.join(failed)}")


@experts.command("doctor")
@click.option("--fix", is_flag=True, help="Repair what is found (else only report).")
def doctor(fix: bool) -> None:
    """Find (and with --fix repair) what interrupted commands left in SAMMOE_HOME."""
    from sammoe_core.experts.registry import Registry

    findings = Registry().doctor(fix=fix)
    for line in findings:
        click.echo(("fixed: " if fix else "found: ") + line)
    if not findings:
        click.echo("nothing to repair")
    elif not fix:
        click.echo(f"{len(findings)} problem(s); `sammoe experts doctor --fix` repairs them")


@experts.command("show")
@click.argument("name")
def show(name: str) -> None:
    """Print an expert's manifest, source, state and tensor names as JSON."""
    from sammoe_core.experts.manage import show_expert

    click.echo(json.dumps(show_expert(name), indent=2))


@experts.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Delete an expert added from a folder (plugin experts: pip uninstall, or disable)."""
    from sammoe_core.experts.manage import remove_expert

    remove_expert(name)
    click.echo(f"removed {name}; {_gate_status()}")


def _gate_status() -> str:
    """What serves the expert set now (computed from the gate manifests, not from a flag)."""
    from sammoe_core.moe.gate_choice import current_gate_choice

    return current_gate_choice().summary()


def _switch(name: str, enabled: bool) -> None:
    from sammoe_core.experts.manage import set_expert_enabled

    changed = set_expert_enabled(name, enabled)
    verb = "enabled" if enabled else "disabled"
    click.echo(f"{verb} {name}; {_gate_status()}" if changed else f"{verb} {name} (it was)")


@experts.command("enable")
@click.argument("name")
def enable(name: str) -> None:
    """Use an expert again."""
    _switch(name, True)


@experts.command("disable")
@click.argument("name")
def disable(name: str) -> None:
    """Keep an expert installed but leave it out of the mixture."""
    _switch(name, False)
