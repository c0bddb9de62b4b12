"""WAL stream pane: pg_receivewal on the Barman node, its slot, its pg_stat_replication row."""

from __future__ import annotations

from datetime import datetime

from textual.app import ComposeResult
from textual.widgets import Sparkline, Static

from dr_console.core import fmt
from dr_console.models import NodeRole
from dr_console.tui.state import ConsoleState, ServerState
from dr_console.tui.widgets.pane import Pane, kv


def _yes(value: bool | None, yes: str = "yes", no: str = "NO") -> str:
    return "-" if value is None else (yes if value else no)


class WalStreamPane(Pane):
    TITLE = "WAL stream"

    def compose(self) -> ComposeResult:
        yield Static(id="wal-body")
        yield Sparkline([], id="wal-lag-spark")

    def show(self, console: ConsoleState, state: ServerState, now: datetime) -> None:
        self.set_stamp(console, state, state.wal, now)
        body = self.query_one("#wal-body", Static)
        spark = self.query_one("#wal-lag-spark", Sparkline)
        wal = state.wal.value
        if state.snapshot.role is NodeRole.PASSIVE:
            body.update("not applicable: a passive node copies WAL from its primary")
            spark.display = False
            return
        if wal is None:
            body.update(state.wal.error or "no data yet")
            spark.display = False
            return
        if wal.receive_wal_running:
            running = f"running (pid {wal.receive_wal_pid})" if wal.receive_wal_pid else "running"
        else:
            running = _yes(wal.receive_wal_running, no="NOT RUNNING")
        receiver = wal.receiver
        rows = [
            ("receive-wal", running),
            (
                "slot",
                f"{wal.slot_name or '-'}  active {_yes(wal.slot_active)}"
                f"  restart {wal.slot_restart_lsn or '-'}",
            ),
            (
                "retained",
                f"{fmt.size(wal.slot_retained_bytes)}  wal_status {wal.slot_wal_status or '-'}",
            ),
        ]
        if receiver is not None:
            rows.append(("receiver", f"{receiver.application_name} {receiver.state or '-'}"))
            rows.append(("sent LSN", receiver.sent_lsn or "-"))
            rows.append(
                ("write / flush", f"{receiver.write_lsn or '-'} / {receiver.flush_lsn or '-'}")
            )
        else:
            rows.append(("receiver", "not in pg_stat_replication"))
        rows.append(
            (
                "lag",
                f"{fmt.size(wal.lag_bytes)}  {fmt.duration(wal.lag_seconds)}"
                f"  (server at {wal.server_lsn or '-'})",
            )
        )
        points = [float(value) for _, value in state.lag]
        # One point, or all zero, would draw a full bar that looks like lag: show words instead.
        drawable = len(points) >= 2 and max(points) > 0
        if points:
            rows.append(
                (
                    "lag history",
                    f"{len(points)} polls, max {fmt.size(max(points))}"
                    + ("" if drawable else " (nothing to draw)"),
                )
            )
        body.update(kv(rows))
        spark.display = drawable
        spark.data = points if drawable else []
