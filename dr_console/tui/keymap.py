"""The one keymap registry: footer, help screen and command palette all read it.

Every binding has a stable id so users can rebind it (`apply_keymap`, later from config).
Scopes say where a binding lives: "app" on the App, "fleet" / "server" on those screens.
Operations (backup, switch-wal, recover) will register in scope "operations" (jobs issue);
the palette offers them unless the console is read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from textual.app import App
from textual.binding import Binding, BindingType

Scope = Literal["app", "fleet", "server", "operations"]


@dataclass(frozen=True)
class KeySpec:
    id: str
    keys: str  # textual key names, comma separated
    action: str
    description: str
    scope: Scope
    help: str
    show: bool = True
    key_display: str | None = None


REGISTRY: tuple[KeySpec, ...] = (
    KeySpec("help", "question_mark", "help", "help", "app", "Show every key binding", True, "?"),
    KeySpec(
        "palette",
        "ctrl+p,colon",
        "command_palette",
        "palette",
        "app",
        "Open the command palette (every action)",
        False,
        ":",
    ),
    KeySpec("quit", "q", "quit", "quit", "app", "Quit drconsole"),
    KeySpec("refresh", "r", "refresh", "refresh", "app", "Refresh now, slow facts included"),
    KeySpec("pause", "space", "toggle_pause", "pause", "app", "Pause / resume polling"),
    KeySpec("slower", "plus", "change_interval(1)", "slower", "app", "Poll less often", False, "+"),
    KeySpec(
        "faster", "minus", "change_interval(-1)", "faster", "app", "Poll more often", False, "-"
    ),
    KeySpec("theme", "t", "cycle_theme", "theme", "app", "Next colour theme", False),
    KeySpec("fleet-filter", "slash", "filter", "filter", "fleet", "Filter rows", True, "/"),
    KeySpec("fleet-sort", "s", "cycle_sort", "sort", "fleet", "Sort by the next column"),
    KeySpec("fleet-open", "enter", "open", "open", "fleet", "Open the selected server", False),
    KeySpec("fleet-back", "escape", "back", "clear", "fleet", "Clear the filter", False, "esc"),
    KeySpec(
        "server-open",
        "enter",
        "open_backup",
        "detail",
        "server",
        "Show the selected backup's full detail",
        False,
    ),
    KeySpec("server-pane-1", "1", "pane(1)", "wal", "server", "Jump to the WAL stream pane", False),
    KeySpec(
        "server-pane-2", "2", "pane(2)", "archive", "server", "Jump to the archive queue", False
    ),
    KeySpec(
        "server-pane-3", "3", "pane(3)", "backups", "server", "Jump to the backup catalogue", False
    ),
    KeySpec(
        "server-pane-4", "4", "pane(4)", "geo", "server", "Jump to the geo-replica pane", False
    ),
    KeySpec("server-back", "escape", "back", "back", "server", "Back to the fleet", True, "esc"),
)


def specs(scope: Scope) -> list[KeySpec]:
    return [s for s in REGISTRY if s.scope == scope]


def bindings(scope: Scope) -> list[BindingType]:
    return [
        Binding(
            s.keys,
            s.action,
            s.description,
            show=s.show,
            key_display=s.key_display,
            id=s.id,
            tooltip=s.help,
        )
        for s in specs(scope)
    ]


def known_ids() -> set[str]:
    return {s.id for s in REGISTRY}


def apply_keymap(app: App[Any], overrides: Mapping[str, str]) -> list[str]:
    """Rebind keys by binding id; returns the problems (unknown ids), applying the rest."""
    ids = known_ids()
    problems = [f"keymap: unknown binding id {key!r}" for key in overrides if key not in ids]
    app.set_keymap({k: v for k, v in overrides.items() if k in ids})
    return problems
