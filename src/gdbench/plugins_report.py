"""What ``gdbench plugins`` prints: every plugin, its origin, components and defaults."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .plugins import PluginSet
from .selection import format_value

if TYPE_CHECKING:
    from rich.console import Group


def plugins_json(plugin_set: PluginSet, problems: list[str] | None = None) -> str:
    """Every plugin as JSON (a list); with ``problems`` (from ``--check``) an object
    ``{"plugins": [...], "problems": [...]}`` instead."""
    plugins = [
        {
            "name": p.name,
            "dist": p.dist,
            "version": p.version,
            "module": p.module,
            "hooks": p.hooks,
            "error": p.error,
            "disabled": p.disabled,
            "components": [
                {
                    "kind": c.kind,
                    "name": c.name,
                    "defaults": {k: _jsonable(v) for k, v in c.defaults.items()},
                    "batchable": c.batchable,
                    "description": c.description,
                }
                for c in p.components
            ],
        }
        for p in plugin_set.plugins
    ]
    if problems is None:
        return json.dumps(plugins, indent=2)
    return json.dumps({"plugins": plugins, "problems": problems}, indent=2)


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def plugins_table(plugin_set: PluginSet) -> Group:
    """One small table per plugin (name, distribution, version), one row per component."""
    from rich import box
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table

    tables = []
    for p in sorted(plugin_set.plugins, key=lambda p: p.name):
        origin = escape(f"{p.dist} {p.version}".strip() or "not packaged")
        table = Table(
            title=f"[bold]{escape(p.name)}[/bold] ({origin})",
            title_justify="left",
            box=box.SIMPLE_HEAD,
        )
        table.add_column("component", no_wrap=True)
        table.add_column("defaults", no_wrap=True)
        table.add_column("batchable", no_wrap=True)
        table.add_column("description", overflow="fold")
        if p.disabled:
            table.add_row("[dim]disabled[/dim]", "", "", f"[dim]{escape(p.disabled)}[/dim]")
        elif p.error:
            table.add_row("[red]failed to load[/red]", "", "", f"[red]{escape(p.error)}[/red]")
        elif not p.components:
            table.add_row("[dim]no components[/dim]", "", "", f"hooks: {', '.join(p.hooks)}")
        for c in p.components:
            defaults = "; ".join(f"{k}={format_value(v)}" for k, v in c.defaults.items())
            batch = ("yes" if c.batchable else "no") if c.kind_info.batchable else ""
            table.add_row(c.qualified_name, escape(defaults) or "—", batch, escape(c.description))
        tables.append(table)
    return Group(*tables)
