"""Pilot tests of the server view: header, the four panes, staleness, backup detail, layouts."""

from __future__ import annotations

from textual.widgets import Sparkline, Static

from dr_console.tui.app import DrConsoleApp
from dr_console.tui.screens.backup_detail import BackupDetailScreen
from dr_console.tui.screens.server import ServerScreen
from dr_console.tui.widgets.backup_catalogue import BackupTable
from dr_console.tui.widgets.fleet_table import FleetTable
from dr_console.tui.widgets.pane import Pane
from tests.tui.fleet_fixture import fleet, with_node_down
from tests.tui.helpers import build, cell, notifications, text_of, wait_for, wait_polls


async def open_server(pilot: object, app: DrConsoleApp, key: str) -> ServerScreen:
    app.open_server(key)
    await wait_for(pilot, lambda: isinstance(app.screen, ServerScreen))  # type: ignore[arg-type]
    screen = app.screen
    assert isinstance(screen, ServerScreen)
    return screen


def body(screen: ServerScreen, selector: str) -> str:
    return text_of(screen.query_one(selector, Static))


async def test_panes_show_the_snapshot_with_titles_and_ages() -> None:
    app, _ = build([fleet()])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_polls(pilot, app, 1)
        screen = await open_server(pilot, app, "bserver/pgserver")
        header = body(screen, "#server-header")
        assert "pgserver on bserver (primary, site X)" in header
        assert "recoverable 2026-11-30 17:00:00 .. 2026-11-30 17:29:20 UTC" in header
        assert "RPO 40s" in header
        titles = {p.border_title: p.border_subtitle for p in screen.query(Pane)}
        assert set(titles) == {"WAL stream", "Archive queue", "Backup catalogue", "Geo-replica"}
        assert titles["WAL stream"] == "30s ago"
        wal = body(screen, "#wal-body")
        assert "running (pid 4242)" in wal
        assert "barman  active yes  restart 0/B000000" in wal
        assert "write / flush 0/B000148 / 0/B000000" in wal
        archive = body(screen, "#archive-body")
        assert "00000001000000000000000B  1m10s ago" in archive
        assert "incoming 0  streaming 1  errors 0" in archive
        assert "12.5 WAL/h" in archive
        table = screen.query_one(BackupTable)
        assert cell(table, "20261130T171940", "status") == "DONE"
        assert cell(table, "20261130T171940", "name") == "nightly"
        assert cell(table, "20261130T171940", "dedup") == "100%"
        geo = body(screen, "#geo-body")
        assert "geobserver (site Y) vs bserver" in geo
        assert "SYNCING 20261130T171940" in geo
        assert "2 seg  32.0 MiB  1m35s" in geo
        assert "sync-wals (777)" in geo


async def test_passive_node_shows_syncing_backup_and_no_stream() -> None:
    app, _ = build([fleet()])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_polls(pilot, app, 1)
        screen = await open_server(pilot, app, "geobserver/pgserver")
        table = screen.query_one(BackupTable)
        assert cell(table, "20261130T171940", "status") == "SYNCING (copying)"
        assert "not applicable" in body(screen, "#wal-body")


async def test_failed_node_keeps_last_values_marked_stale() -> None:
    good = fleet()
    down = with_node_down(fleet(), "geobserver", "ssh: connection refused")
    app, _ = build([good, down])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_polls(pilot, app, 1)
        await pilot.press("r")
        await wait_polls(pilot, app, 2)
        table = app.screen.query_one(FleetTable)
        assert cell(table, "geobserver/pgserver", "health") == "UNKNOWN STALE"
        assert cell(table, "geobserver/pgserver", "geo") == "2 seg"  # last good value kept
        screen = await open_server(pilot, app, "geobserver/pgserver")
        geo_pane = screen.query_one("#pane-geo", Pane)
        assert geo_pane.border_subtitle == "STALE (data 30s old): ssh: connection refused"
        assert "STALE" in body(screen, "#server-header")
        assert "2 seg" in body(screen, "#geo-body")


async def test_a_crashing_collect_is_shown_and_the_next_poll_recovers() -> None:
    app, _ = build([fleet(), RuntimeError("collector bug"), fleet()])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_polls(pilot, app, 1)
        await pilot.press("r")
        await wait_polls(pilot, app, 2)
        status = text_of(app.screen.query_one("#status-line", Static))
        assert "STALE: poll failed: collector bug" in status
        screen = await open_server(pilot, app, "bserver/pgserver")
        sub = screen.query_one("#pane-archive", Pane).border_subtitle
        assert sub == "STALE (data 30s old): poll failed: collector bug"
        assert "00000001000000000000000B" in body(screen, "#archive-body")
        await pilot.press("r")
        await wait_polls(pilot, app, 3)
        assert screen.query_one("#pane-archive", Pane).border_subtitle == "30s ago"


async def test_enter_on_a_backup_opens_its_detail_and_polls_wait() -> None:
    app, collector = build([fleet()])
    app.interval = 1.0
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_polls(pilot, app, 1)
        screen = await open_server(pilot, app, "bserver/pgserver")
        await pilot.press("3")  # jump to the backup catalogue
        assert screen.query_one(BackupTable).has_focus
        await pilot.press("down")  # the older backup
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BackupDetailScreen))
        detail = app.screen
        assert isinstance(detail, BackupDetailScreen)
        await wait_for(
            pilot, lambda: "begin LSN" in text_of(detail.query_one("#detail-text", Static))
        )
        text = text_of(detail.query_one("#detail-text", Static))
        assert "20261130T170102" in text
        assert "0/A000028" in text
        assert collector.detail_requests == [("bserver", "pgserver", "20261130T170102")]
        polls = len(collector.calls)
        await pilot.pause(1.5)  # the 1 s timer fires while the dialog is open: no poll
        assert len(collector.calls) == polls
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ServerScreen))
        await wait_for(pilot, lambda: len(collector.calls) > polls, timeout=3)


async def test_backup_detail_failure_is_shown_in_the_dialog() -> None:
    app, _ = build([fleet()])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_polls(pilot, app, 1)
        await open_server(pilot, app, "bserver/pgserver")
        app.open_backup("bserver/pgserver", "nosuchbackup")
        await wait_for(pilot, lambda: isinstance(app.screen, BackupDetailScreen))
        detail = app.screen
        await wait_for(pilot, lambda: "FAILED" in text_of(detail.query_one("#detail-text", Static)))
        assert "nosuchbackup not found" in text_of(detail.query_one("#detail-text", Static))
        assert not notifications(app)


async def test_narrow_terminal_stacks_panes_and_wide_one_uses_a_grid() -> None:
    for size, wide in (((80, 24), False), ((120, 40), True)):
        app, _ = build([fleet()])
        async with app.run_test(size=size) as pilot:
            await wait_polls(pilot, app, 1)
            screen = await open_server(pilot, app, "bserver/pgserver")
            await pilot.pause()
            wal = screen.query_one("#pane-wal").region
            archive = screen.query_one("#pane-archive").region
            if wide:
                assert screen.has_class("-wide")
                assert archive.x > wal.x and archive.y == wal.y
            else:
                assert screen.has_class("-narrow")
                assert archive.x == wal.x and archive.y > wal.y
                assert wal.width >= 78  # full width at 80 columns


async def test_lag_sparkline_draws_only_when_there_is_a_history() -> None:
    app, _ = build([fleet(lag=328), fleet(lag=4096)])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_polls(pilot, app, 1)
        screen = await open_server(pilot, app, "bserver/pgserver")
        spark = screen.query_one("#wal-lag-spark", Sparkline)
        assert not spark.display  # one point would look like a full bar
        assert "1 polls, max 328 B (nothing to draw)" in body(screen, "#wal-body")
        await pilot.press("r")
        await wait_polls(pilot, app, 2)
        assert spark.display
        assert list(spark.data or []) == [328.0, 4096.0]
        assert "2 polls, max 4.0 KiB" in body(screen, "#wal-body")
