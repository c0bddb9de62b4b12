"""Archive queue pane: PostgreSQL's archiver and the WAL waiting on the Barman node."""

from __future__ import annotations

from datetime import datetime

from textual.app import ComposeResult
from textual.widgets import Static

from dr_console.core import fmt
from dr_console.tui.state import ConsoleState, ServerState
from dr_console.tui.widgets.pane import Pane, kv


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


class ArchiveQueuePane(Pane):
    TITLE = "Archive queue"

    def compose(self) -> ComposeResult:
        yield Static(id="archive-body")

    def show(self, console: ConsoleState, state: ServerState, now: datetime) -> None:
        self.set_stamp(console, state, state.archive, now)
        body = self.query_one("#archive-body", Static)
        queue = state.archive.value
        if queue is None:
            body.update(state.archive.error or "no data yet")
            return
        pg = queue.pg
        if queue.archiver_enabled is False:
            failures = last_failed = ready = "not used (archiver off: WAL by streaming only)"
        elif pg is not None:
            failed_at = fmt.duration(fmt.age_seconds(pg.last_failed_time, now))
            failures = f"{pg.failed_count} on PostgreSQL"
            last_failed = f"{pg.last_failed_wal}  {failed_at} ago" if pg.last_failed_wal else "none"
            ready = _count(pg.ready_count)
            if pg.oldest_ready:
                ready += f"  oldest {pg.oldest_ready}"
        else:
            failures = f"{_count(queue.barman_failed_count)} (Barman)"
            last_failed = "-"
            ready = f"unknown: {queue.pg_error}" if queue.pg_error else "-"
        archived_age = fmt.duration(fmt.age_seconds(queue.last_archived_time, now))
        rate = (
            "-"
            if queue.archived_wals_per_hour is None
            else f"{queue.archived_wals_per_hour:.1f} WAL/h"
        )
        rows = [
            ("failures", failures),
            ("last failed", last_failed),
            (".ready on PG", ready),
            (
                "on Barman",
                f"incoming {_count(queue.incoming_count)}  streaming "
                f"{_count(queue.streaming_count)}  errors {_count(queue.errors_count)}",
            ),
            ("last archived", f"{queue.last_archived_wal or '-'}  {archived_age} ago"),
            ("rate", rate),
        ]
        body.update(kv(rows))
