"""The real console on the lab (Textual's run_test + the real Collector over ssh/psycopg):
the panes show what Barman's files, the barman CLI and PostgreSQL say."""

from __future__ import annotations

import asyncio

import pytest
from ground_truth import LAB_SERVERS, SERVER, meta_backups, xlogdb_segments
from rich.text import Text
from textual.widgets import DataTable, Static

from dr_console.config import load_config
from dr_console.core.wal import segments_between
from dr_console.lab.lab import Lab
from dr_console.tui.app import DrConsoleApp
from dr_console.tui.launch import make_app
from dr_console.tui.screens.server import ServerScreen
from dr_console.tui.widgets.backup_catalogue import BackupTable
from dr_console.tui.widgets.fleet_table import FleetTable

pytestmark = pytest.mark.integration


def _cell(table: DataTable[Text], row: str, column: str) -> str:
    value = table.get_cell(row, column)
    return value.plain if isinstance(value, Text) else str(value)


async def _until(condition: object, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError(f"not met within {timeout:.0f} s")
        await asyncio.sleep(0.1)


async def test_console_panes_match_barman_and_postgres(lab: Lab) -> None:
    app: DrConsoleApp = make_app(load_config(lab.config_path))
    primary_key, passive_key = f"bserver/{SERVER}", f"geobserver/{SERVER}"
    async with app.run_test(size=(120, 40)) as pilot:
        before = xlogdb_segments(lab, "bserver")[-1]
        await _until(lambda: app.polls >= 1, 90)
        await pilot.pause()
        after = xlogdb_segments(lab, "bserver")[-1]
        after_passive = xlogdb_segments(lab, "geobserver")[-1]
        assert app.state.poll_error is None
        table = app.screen.query_one(FleetTable)
        assert {str(r.key.value) for r in table.ordered_rows} == {
            f"{node}/{server}" for node in ("bserver", "geobserver") for server in LAB_SERVERS
        }

        # last archived WAL == the last segment in xlog.db (bracketed: the lab is live)
        shown_wal = _cell(table, primary_key, "wal")
        assert before <= shown_wal <= after
        # geo lag in segments: between 0 and the distance from the passive's to the primary's end
        geo = _cell(table, passive_key, "geo")
        assert geo.endswith(" seg"), geo
        bound = segments_between(after_passive, after)
        assert bound is not None and 0 <= int(geo.split()[0]) <= max(bound, 0) + 1
        for key in (primary_key, passive_key):
            assert _cell(table, key, "health").split()[0] in {
                "OK",
                "WARNING",
                "CRITICAL",
                "UNKNOWN",
            }

        # the server view: the backup ids are Barman's own (meta/*-backup.info on the node)
        await pilot.press("enter")
        await _until(lambda: isinstance(app.screen, ServerScreen), 10)
        screen = app.screen
        assert isinstance(screen, ServerScreen)
        await pilot.pause()
        shown_ids = {str(r.key.value) for r in screen.query_one(BackupTable).ordered_rows}
        on_disk = meta_backups(lab, screen.key.split("/")[0])
        # a backup may start or finish between the poll and this reading
        assert len(shown_ids ^ set(on_disk)) <= 1, (shown_ids, on_disk)
        archive = str(screen.query_one("#archive-body", Static).render())
        assert shown_wal in archive
        wal = str(screen.query_one("#wal-body", Static).render())
        assert "running (pid " in wal and "barman  active yes" in wal
        geo_text = str(screen.query_one("#geo-body", Static).render())
        assert "geobserver (site " in geo_text and "vs bserver" in geo_text
        await pilot.press("q")
    assert app.return_code == 0
