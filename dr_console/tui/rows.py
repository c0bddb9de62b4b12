"""Fleet view rows: the text of each cell and the value each column sorts by. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dr_console.core import fmt
from dr_console.models import Health, NodeSnapshot
from dr_console.tui.state import ConsoleState, ServerState, row_key

# (key, title). The long WAL name comes last so the figures fit in 80 columns.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("server", "server"),
    ("node", "node"),
    ("site", "site"),
    ("role", "role"),
    ("health", "health"),
    ("backup", "backup"),
    ("stream", "stream lag"),
    ("geo", "geo lag"),
    ("rpo", "RPO"),
    ("wal", "last WAL"),
    ("wal_age", "WAL age"),
)
COLUMN_KEYS = tuple(key for key, _ in COLUMNS)
SortValue = tuple[int, float | str]  # (0, value) sorts before (1, missing)
# The server cell of an unreachable node's row: never a Barman server name (no parentheses).
UNREACHABLE = "(unreachable)"


@dataclass(frozen=True)
class FleetRow:
    key: str
    cells: dict[str, str]
    sort: dict[str, SortValue]
    health: Health
    stale: bool

    def matches(self, needle: str) -> bool:
        needle = needle.strip().lower()
        return not needle or any(needle in text.lower() for text in self.cells.values())


def _num(value: float | None) -> SortValue:
    return (1, 0.0) if value is None else (0, float(value))


def _text(value: str | None) -> SortValue:
    return (1, "") if value is None else (0, value)


def fleet_row(console: ConsoleState, state: ServerState, now: datetime) -> FleetRow:
    snap = state.snapshot
    wal = state.wal.value
    archive = state.archive.value
    catalogue = state.catalogue.value
    geo = state.geo.value
    last_backup = catalogue.last_done if catalogue else None
    backup_age = fmt.age_seconds(last_backup.end_time if last_backup else None, now)
    last_wal = archive.last_archived_wal if archive else None
    wal_time = archive.last_archived_time if archive else None
    if last_wal is None and snap.status is not None:
        last_wal, wal_time = snap.status.last_archived_wal, snap.status.last_archived_time
    wal_age = fmt.age_seconds(wal_time, now)
    stream_lag = wal.lag_bytes if wal else None
    geo_segments = geo.wal_lag_segments if geo else None
    rpo = snap.window.rpo_seconds if snap.window else None
    stale = bool(console.poll_error or state.node_error)
    health = state.health
    health_text = health.label + (" STALE" if stale else "")
    cells = {
        "server": state.server,
        "node": state.node,
        "site": snap.site or "-",
        "role": snap.role.value,
        "health": health_text,
        "backup": fmt.duration(backup_age),
        "stream": fmt.size(stream_lag) if snap.role.value == "primary" else "n/a",
        "geo": "n/a" if snap.role.value == "primary" else _segments(geo_segments),
        "rpo": fmt.duration(rpo),
        "wal": last_wal or "-",
        "wal_age": fmt.duration(wal_age),
    }
    sort = {
        "server": _text(state.server),
        "node": _text(state.node),
        "site": _text(snap.site),
        "role": _text(snap.role.value),
        # worst first when sorted: CRITICAL, WARNING, UNKNOWN, OK
        "health": (0, float(-{Health.UNKNOWN: 1.5}.get(health, int(health)))),
        "backup": _num(backup_age),
        "stream": _num(stream_lag),
        "geo": _num(geo_segments),
        "rpo": _num(rpo),
        "wal": _text(last_wal),
        "wal_age": _num(wal_age),
    }
    return FleetRow(state.key, cells, sort, health, stale)


def _segments(count: int | None) -> str:
    if count is None:
        return "-"
    return f"{count} seg"


def node_key(node: str) -> str:
    """The row key of NODE's row while it is unreachable and none of its servers is known."""
    return row_key(node, UNREACHABLE)


def dark_node_row(node: NodeSnapshot) -> FleetRow:
    """A row for a node the console cannot reach and whose servers it has never seen, so that
    a node down from the start is as visible as one that went down later."""
    cells = dict.fromkeys(COLUMN_KEYS, "-")
    cells.update(server=UNREACHABLE, node=node.node, site=node.site or "-",
                 role=node.role.value, health=f"{Health.UNKNOWN.label} STALE")
    sort = {key: _text(None) for key in COLUMN_KEYS}
    sort.update(server=_text(UNREACHABLE), node=_text(node.node), site=_text(node.site),
                role=_text(node.role.value), health=(0, -1.5))
    return FleetRow(node_key(node.node), cells, sort, Health.UNKNOWN, True)


def fleet_rows(console: ConsoleState, now: datetime) -> list[FleetRow]:
    rows = [fleet_row(console, state, now) for state in console.servers.values()]
    return rows + [dark_node_row(node) for node in console.dark_nodes.values()]
