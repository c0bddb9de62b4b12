"""The one keymap registry: footer, help screen and command palette all read it.

Every binding has a stable id so users can rebind it (`apply_keymap`, later from config).
Scopes say where a binding lives: "app" on the App, "fleet" / "server" on those screens.
Operations (scope "operations" on the server view, and the jobs screen's cancel) are marked
`operation=True`: read-only removes them from the footer, help and palette, and their keys then
only say "read-only" (a hidden twin binding, see `bindings`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from textual.app import App
from textual.binding import Binding, BindingType

Scope = Literal["app", "fleet", "server", "operations", "jobs"]
READONLY_SUFFIX = "-readonly"
READONLY_ACTION = "readonly_refused"


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
    operation: bool = False  # changes something on a node: removed by read-only


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
    KeySpec("jobs", "j", "jobs", "jobs", "app", "Jobs on every node (running and finished)"),
    KeySpec(
        "op-backup",
        "b",
        "operate('backup')",
        "backup",
        "operations",
        "Start a backup of this server (primary node only)",
        operation=True,
    ),
    KeySpec(
        "op-switch-wal",
        "w",
        "operate('switch-wal')",
        "switch-wal",
        "operations",
        "switch-wal --force --archive: close the current WAL and wait for it (primary only)",
        operation=True,
    ),
    KeySpec(
        "op-cron",
        "c",
        "operate('cron')",
        "cron",
        "operations",
        "Run barman cron on this server's node",
        operation=True,
    ),
    KeySpec(
        "op-keep",
        "k",
        "operate('keep')",
        "keep",
        "operations",
        "Keep the selected backup (target full): retention never removes it",
        False,
        operation=True,
    ),
    KeySpec(
        "op-release",
        "u",
        "operate('release')",
        "release",
        "operations",
        "Release the keep annotation of the selected backup",
        False,
        operation=True,
    ),
    KeySpec(
        "op-delete",
        "D",
        "operate('delete')",
        "delete",
        "operations",
        "Delete the selected backup (type its id to confirm)",
        False,
        operation=True,
    ),
    KeySpec(
        "op-recover",
        "R",
        "recover",
        "recover",
        "operations",
        "Recovery walkthrough (PITR) or DR drill of this server",
        operation=True,
    ),
    KeySpec(
        "fleet-recover",
        "R",
        "recover",
        "recover",
        "fleet",
        "Recovery walkthrough (PITR) or DR drill of the selected server",
        False,
        operation=True,
    ),
    KeySpec("jobs-open", "enter", "open_job", "log", "jobs", "Open the job's log from its start"),
    KeySpec(
        "jobs-tail", "e", "open_job(False)", "tail", "jobs", "Open the job's log at its last lines"
    ),
    KeySpec(
        "jobs-cancel",
        "x",
        "cancel_job",
        "cancel",
        "jobs",
        "Cancel the selected running job (type its server or node to confirm)",
        operation=True,
    ),
    KeySpec("jobs-back", "escape", "back", "back", "jobs", "Back", True, "esc"),
)


def specs(scope: Scope) -> list[KeySpec]:
    return [s for s in REGISTRY if s.scope == scope]


def bindings(scope: Scope) -> list[BindingType]:
    """The bindings of a scope. An operation also gets a hidden twin on the same key that only
    says "read-only"; the screen's check_action enables exactly one of the two."""
    out: list[BindingType] = []
    for s in specs(scope):
        out.append(
            Binding(
                s.keys,
                s.action,
                s.description,
                show=s.show,
                key_display=s.key_display,
                id=s.id,
                tooltip=s.help,
            )
        )
        if s.operation:
            out.append(
                Binding(
                    s.keys,
                    f"{READONLY_ACTION}({s.description!r})",
                    s.description,
                    show=False,
                    id=s.id + READONLY_SUFFIX,
                )
            )
    return out


def operation_actions() -> frozenset[str]:
    """Action names (without parameters) of every operation: read-only disables them."""
    return frozenset(s.action.split("(", 1)[0] for s in REGISTRY if s.operation)


def known_ids() -> set[str]:
    return {s.id for s in REGISTRY}


def apply_keymap(app: App[Any], overrides: Mapping[str, str]) -> list[str]:
    """Rebind keys by binding id; returns the problems (unknown ids), applying the rest."""
    ids = known_ids()
    problems = [f"keymap: unknown binding id {key!r}" for key in overrides if key not in ids]
    keymap = {k: v for k, v in overrides.items() if k in ids}
    for spec in REGISTRY:  # an operation's read-only twin follows its key
        if spec.operation and spec.id in keymap:
            keymap[spec.id + READONLY_SUFFIX] = keymap[spec.id]
    app.set_keymap(keymap)
    return problems
