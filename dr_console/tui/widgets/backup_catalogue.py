"""Backup catalogue pane: Barman's backups in a keyed table; enter asks for the full detail."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from dr_console.core import fmt
from dr_console.models import Backup
from dr_console.tui.state import ConsoleState, ServerState
from dr_console.tui.widgets.pane import Pane

COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "id"),
    ("name", "name"),
    ("end", "end time"),
    ("status", "status"),
    ("size", "size"),
    ("wal", "WAL size"),
    ("retention", "retention"),
    ("dedup", "dedup saving"),
)

STATUS_WORDS = {
    "EMPTY": "EMPTY (running)",
    "STARTED": "STARTED (running)",
    "SYNCING": "SYNCING (copying)",
    "WAITING_FOR_WALS": "WAITING_FOR_WALS",
}


def backup_cells(backup: Backup) -> dict[str, str]:
    saving = "-"
    if backup.size_bytes and backup.deduplicated_size_bytes is not None:
        saved = 1 - backup.deduplicated_size_bytes / backup.size_bytes
        saving = f"{saved * 100:.0f}%"
    end = backup.end_time.strftime("%Y-%m-%d %H:%M:%S") if backup.end_time else "-"
    return {
        "id": backup.backup_id,
        "name": backup.backup_name or "-",
        "end": end,
        "status": STATUS_WORDS.get(backup.status, backup.status),
        "size": fmt.size(backup.size_bytes),
        "wal": fmt.size(backup.wal_size_bytes),
        "retention": backup.retention_status or "-",
        "dedup": saving,
    }


class BackupTable(DataTable[Text]):
    def __init__(self) -> None:
        super().__init__(id="backup-table", cursor_type="row")
        self._shown: dict[str, dict[str, str]] = {}

    def on_mount(self) -> None:
        for key, title in COLUMNS:
            self.add_column(title, key=key)

    @property
    def selected_backup(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def show_backups(self, backups: tuple[Backup, ...]) -> None:
        keep = self.selected_backup
        wanted = {b.backup_id: backup_cells(b) for b in backups}
        for key in list(self._shown):
            if key not in wanted:
                self.remove_row(key)
                del self._shown[key]
        for key, cells in wanted.items():
            old = self._shown.get(key)
            if old is None:
                self.add_row(*(Text(v) for v in cells.values()), key=key)
            else:
                for column, value in cells.items():
                    if old[column] != value:
                        self.update_cell(key, column, Text(value))
            self._shown[key] = cells
        order = list(wanted)  # Barman lists newest first; keep its order
        self.sort("id", key=lambda value: order.index(str(value)))
        if keep is not None and keep in self._shown:
            index = self.get_row_index(keep)
            if index != self.cursor_row:
                self.move_cursor(row=index, animate=False)


class BackupCataloguePane(Pane):
    TITLE = "Backup catalogue"

    def compose(self) -> ComposeResult:
        yield Static(id="catalogue-note")
        yield BackupTable()

    def show(self, console: ConsoleState, state: ServerState, now: datetime) -> None:
        self.set_stamp(console, state, state.catalogue, now)
        note = self.query_one("#catalogue-note", Static)
        catalogue = state.catalogue.value
        if catalogue is None:
            note.update(state.catalogue.error or "no data yet")
            note.display = True
            return
        last = catalogue.last_done
        if not catalogue.backups:
            summary = "no backups"
        else:
            done = len(catalogue.done)
            summary = f"{len(catalogue.backups)} backups, {done} DONE"
            if last is not None and last.end_time is not None:
                age = fmt.duration(fmt.age_seconds(last.end_time, now))
                summary += f"; last DONE {last.backup_id} {age} ago"
        note.update(Text(summary))
        self.query_one(BackupTable).show_backups(catalogue.backups)
