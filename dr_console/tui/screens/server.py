"""The server view: header with the recoverability window, and the four panes."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Static

from dr_console.core import fmt
from dr_console.core.operations import NEEDS_BACKUP, OpKind
from dr_console.tui import keymap
from dr_console.tui.screens.base import ConsoleScreen
from dr_console.tui.widgets.archive_queue import ArchiveQueuePane
from dr_console.tui.widgets.backup_catalogue import BackupCataloguePane, BackupTable
from dr_console.tui.widgets.geo_replica import GeoReplicaPane
from dr_console.tui.widgets.pane import Pane
from dr_console.tui.widgets.wal_stream import WalStreamPane


def _when(value: object) -> str:
    from datetime import datetime

    return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else "-"


class ServerScreen(ConsoleScreen):
    SCOPE = "server"
    SCOPES = ("operations",)
    BINDINGS = [*keymap.bindings("server"), *keymap.bindings("operations")]

    def __init__(self, key: str) -> None:
        super().__init__(classes="server-screen")
        self.key = key  # "node/server"

    def compose(self) -> ComposeResult:
        yield Static(id="server-header")
        with VerticalScroll(id="panes"):
            yield WalStreamPane(id="pane-wal")
            yield ArchiveQueuePane(id="pane-archive")
            yield BackupCataloguePane(id="pane-catalogue")
            yield GeoReplicaPane(id="pane-geo")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#panes").focus()
        self.ready = True
        self.refresh_view()

    def refresh_view(self) -> None:
        app = self.console
        state = app.state.servers.get(self.key)
        header = self.query_one("#server-header", Static)
        if state is None:
            header.update(Text(f"{self.key}: no longer in the fleet (esc: back)", style="bold"))
            return
        now = app.now()
        snap = state.snapshot
        window = snap.window
        line1 = Text()
        line1.append(f"{state.server}", style="bold")
        barman = f", Barman {snap.barman_version}" if snap.barman_version else ""
        line1.append(f" on {state.node} ({snap.role.value}, site {snap.site or '-'}{barman})"
                     "  health ")
        line1.append(state.health.label, style="bold")
        if app.state.poll_error or state.node_error:
            line1.append("  STALE", style="bold reverse")
        if window is not None:
            line2 = Text(
                f"recoverable {_when(window.begin)} .. {_when(window.end)} UTC"
                f"  RPO {fmt.duration(window.rpo_seconds)}"
                f"  backups {window.oldest_backup_id or '-'} .. {window.latest_backup_id or '-'}"
            )
        else:
            line2 = Text("recoverable window: unknown  RPO -")
        line1.append("\n")
        line1.append_text(line2)
        if state.health_detail:
            line1.append("\n" + state.health_detail, style="italic")
        header.update(line1)
        for pane in self.query(Pane):
            pane.show(app.state, state, now)

    def action_pane(self, number: int) -> None:
        panes = list(self.query(Pane))
        if not 1 <= number <= len(panes):
            return
        pane = panes[number - 1]
        self.query_one("#panes", VerticalScroll).scroll_to_widget(pane, animate=False, top=True)
        if isinstance(pane, BackupCataloguePane):
            self.query_one(BackupTable).focus(scroll_visible=False)
        else:
            self.query_one("#panes").focus(scroll_visible=False)

    def action_back(self) -> None:
        self.dismiss()

    def action_open_backup(self) -> None:
        backup_id = self.query_one(BackupTable).selected_backup
        if backup_id is not None:
            self.console.open_backup(self.key, backup_id)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if isinstance(event.data_table, BackupTable) and event.row_key.value is not None:
            event.stop()
            self.console.open_backup(self.key, event.row_key.value)

    def action_recover(self) -> None:
        from dr_console.tui.screens.recovery import open_recovery

        open_recovery(self.console, self.key)

    def action_operate(self, kind: str) -> None:
        op = OpKind(kind)
        backup_id = self.query_one(BackupTable).selected_backup if op in NEEDS_BACKUP else None
        self.console.operate(op, self.key, backup_id)
