"""Geo-replica pane: every passive node's copy of this server, compared with its primary."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from dr_console.core import fmt
from dr_console.models import GeoReplica, NodeRole
from dr_console.tui.state import ConsoleState, ServerState, stamp
from dr_console.tui.widgets.pane import Pane, kv


def _ids(ids: tuple[str, ...]) -> str:
    return ", ".join(ids) if ids else "none"


def geo_lines(geo: GeoReplica, now: datetime) -> list[tuple[str, str]]:
    if geo.missing_backups:
        backups = f"MISSING {len(geo.missing_backups)}: {_ids(geo.missing_backups)}"
    else:
        backups = "all present"
    if geo.syncing_backups:
        backups += f"; SYNCING {_ids(geo.syncing_backups)}"
    lag = "-"
    if geo.wal_lag_segments is not None:
        lag = (
            f"{geo.wal_lag_segments} seg  {fmt.size(geo.wal_lag_bytes)}"
            f"  {fmt.duration(geo.wal_lag_seconds)}"
        )
    processes = ", ".join(f"{p.name} ({p.pid})" for p in geo.sync_processes) or "none"
    last_sync = (
        f"{fmt.duration(fmt.age_seconds(geo.last_sync, now))} ago" if geo.last_sync else "never"
    )
    lines = [
        ("backups", backups),
        ("WAL lag", lag),
        ("last sync", last_sync),
        ("sync procs", processes),
    ]
    if geo.sync_blocked:
        lines.append(("STUCK", geo.sync_blocked))
    return lines


class GeoReplicaPane(Pane):
    TITLE = "Geo-replica"

    def compose(self) -> ComposeResult:
        yield Static(id="geo-body")

    def show(self, console: ConsoleState, state: ServerState, now: datetime) -> None:
        copies = [
            s
            for s in console.servers.values()
            if s.server == state.server and s.snapshot.role is NodeRole.PASSIVE
        ]
        body = self.query_one("#geo-body", Static)
        if not copies:
            self.border_subtitle = "no passive node"
            body.update("no passive node holds a copy of this server")
            return
        own = next((c for c in copies if c.key == state.key), copies[0])
        self.set_stamp(console, own, own.geo, now)
        text = Text()
        for index, copy in enumerate(copies):
            if index:
                text.append("\n")
            geo = copy.geo.value
            primary = geo.primary_node if geo and geo.primary_node else "?"
            text.append(
                f"{copy.node} (site {copy.snapshot.site or '-'}) vs {primary}\n",
                style="bold underline",
            )
            reason = console.stale_reason(copy, copy.geo)
            if geo is None:
                text.append(reason or "no data yet")
                continue
            if reason:
                text.append(stamp(copy.geo, reason, now) + "\n", style="bold")
            text.append_text(kv(geo_lines(geo, now)))
        body.update(text)
