"""Modal: the full `barman show-backup` detail of one backup."""

from __future__ import annotations

import json
from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from dr_console.core import fmt
from dr_console.models import BackupDetail
from dr_console.tui.widgets.pane import kv


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z") if value else "-"


def detail_rows(detail: BackupDetail) -> list[tuple[str, str]]:
    b = detail.backup
    pct = detail.resources_saved_percentage
    rows = [
        ("server", detail.server),
        ("backup id", b.backup_id),
        ("name", b.backup_name or "-"),
        ("status", b.status),
        ("type", b.backup_type or "-"),
        ("begin", _when(b.begin_time)),
        ("end", _when(b.end_time)),
        ("begin WAL", b.begin_wal or "-"),
        ("end WAL", b.end_wal or "-"),
        ("begin LSN", detail.begin_lsn or "-"),
        ("end LSN", detail.end_lsn or "-"),
        ("timeline", "-" if b.timeline is None else str(b.timeline)),
        ("size", fmt.size(b.size_bytes)),
        ("WAL size", fmt.size(b.wal_size_bytes)),
        ("cluster size", fmt.size(detail.cluster_size_bytes)),
        ("WAL files", "-" if detail.wal_files is None else str(detail.wal_files)),
        ("last WAL", detail.wal_last_available or "-"),
        ("retention", b.retention_status or "-"),
        ("PostgreSQL", detail.postgresql_version or "-"),
        ("system id", detail.system_id or "-"),
        ("PGDATA", detail.pgdata_directory or "-"),
        ("previous", detail.previous_backup or "-"),
        ("next", detail.next_backup or "-"),
        ("copy time", fmt.duration(detail.copy_time_seconds)),
        ("saved", "-" if pct is None else f"{pct:.1f}%"),
    ]
    return rows


class BackupDetailScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "close", "close", id="detail-close")]

    def __init__(self, key: str, backup_id: str) -> None:
        super().__init__(id="backup-detail")
        self.key = key
        self.backup_id = backup_id

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-body") as body:
            body.border_title = f"backup {self.backup_id}"
            body.border_subtitle = "esc closes"
            yield Static(f"loading show-backup {self.backup_id}…", id="detail-text")

    def show_detail(self, detail: BackupDetail) -> None:
        text = kv(detail_rows(detail))
        if detail.raw:
            text.append("\n\nshow-backup (raw)\n", style="bold")
            text.append(json.dumps(detail.raw, indent=1, sort_keys=True, default=str))
        self.query_one("#detail-text", Static).update(text)

    def show_error(self, error: str) -> None:
        self.query_one("#detail-text", Static).update(
            Text(f"show-backup {self.backup_id} FAILED: {error}", style="bold")
        )

    def action_close(self) -> None:
        self.dismiss()
