"""Pilot tests of the fleet view: rows, health words, keyed refresh, filter, sort, open."""

from __future__ import annotations

from textual.widgets import Input, Static

from dr_console.tui.screens.fleet import FleetScreen
from dr_console.tui.screens.server import ServerScreen
from dr_console.tui.widgets.fleet_table import FleetTable
from tests.tui.fleet_fixture import fleet, many_servers, with_node_down, with_stream_lag
from tests.tui.helpers import build, cell, notifications, row_keys, text_of, wait_for, wait_polls


async def test_one_row_per_server_per_node_with_health_words() -> None:
    app, _ = build([fleet()])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_polls(pilot, app, 1)
        table = app.screen.query_one(FleetTable)
        assert sorted(row_keys(table)) == [
            "bserver/pgother",
            "bserver/pgserver",
            "geobserver/pgserver",
        ]
        assert cell(table, "geobserver/pgserver", "site") == "Y"
        assert cell(table, "geobserver/pgserver", "role") == "passive"
        assert cell(table, "geobserver/pgserver", "geo") == "2 seg"
        assert cell(table, "bserver/pgserver", "wal") == "00000001000000000000000B"
        assert cell(table, "bserver/pgserver", "wal_age") == "1m10s"
        assert cell(table, "bserver/pgserver", "backup") == "10m30s"
        assert cell(table, "bserver/pgserver", "stream") == "328 B"
        # pgother's receive-wal is down: the checks say so, in words
        assert cell(table, "bserver/pgother", "health") == "CRITICAL"
        for key in row_keys(table):
            assert cell(table, key, "health") in {"OK", "WARNING", "CRITICAL", "UNKNOWN"}
        status = text_of(app.screen.query_one("#status-line", Static))
        assert "3 servers on 2 nodes" in status
        assert "every 5s" in status


async def test_cursor_and_scroll_survive_a_refresh() -> None:
    first = many_servers(40)
    # the second poll changes a value in every row: the table must update in place
    app, _ = build([first, with_stream_lag(first, 9999)])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_polls(pilot, app, 1)
        table = app.screen.query_one(FleetTable)
        for _ in range(30):
            await pilot.press("down")
        await pilot.pause()
        before_key = table.cursor_key
        before_scroll = table.scroll_y
        assert before_key == "bserver/pg30"
        assert before_scroll > 0
        await pilot.press("r")
        await wait_polls(pilot, app, 2)
        assert cell(table, "bserver/pg30", "stream") == "9.8 KiB"
        assert table.cursor_key == before_key
        assert table.scroll_y == before_scroll


async def test_filter_hides_rows_and_escape_restores_them() -> None:
    app, _ = build([fleet()])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_polls(pilot, app, 1)
        table = app.screen.query_one(FleetTable)
        await pilot.press("slash")
        box = app.screen.query_one("#filter", Input)
        assert box.display and box.has_focus
        await pilot.press(*"geo")
        await pilot.pause()
        assert row_keys(table) == ["geobserver/pgserver"]
        await pilot.press("enter")
        assert table.has_focus
        await pilot.press("escape")
        await pilot.pause()
        assert len(row_keys(table)) == 3
        assert not box.display


async def test_sort_cycles_columns_and_keeps_the_cursor_on_its_row() -> None:
    app, _ = build([fleet()])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_polls(pilot, app, 1)
        table = app.screen.query_one(FleetTable)
        assert row_keys(table)[0] == "bserver/pgserver"
        await pilot.press("s")  # by server name
        await pilot.pause()
        assert row_keys(table) == ["bserver/pgother", "bserver/pgserver", "geobserver/pgserver"]
        assert "sorted by server" in notifications(app)
        table.move_cursor(row=2)
        await pilot.press("s")  # by node: the cursor stays on the same server
        await pilot.pause()
        assert table.cursor_key == "geobserver/pgserver"
        for _ in range(3):
            await pilot.press("s")
        await pilot.pause()
        assert "sorted by health" in notifications(app)
        assert row_keys(table)[0] == "bserver/pgother"  # CRITICAL first


async def test_enter_opens_the_server_view_and_escape_returns() -> None:
    app, _ = build([fleet()])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_polls(pilot, app, 1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ServerScreen))
        assert isinstance(app.screen, ServerScreen)
        assert app.screen.key == "bserver/pgserver"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen))


async def test_a_node_down_from_the_start_has_a_row_until_it_answers() -> None:
    down = with_node_down(fleet(), "geobserver", "ssh: connection refused")
    app, _ = build([down, fleet()])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_polls(pilot, app, 1)
        table = app.screen.query_one(FleetTable)
        assert sorted(row_keys(table)) == ["bserver/pgother", "bserver/pgserver",
                                           "geobserver/(unreachable)"]
        row = "geobserver/(unreachable)"
        assert cell(table, row, "health") == "UNKNOWN STALE"
        assert (cell(table, row, "site"), cell(table, row, "role")) == ("Y", "passive")
        status = text_of(app.screen.query_one("#status-line", Static))
        assert "2 servers on 2 nodes" in status
        assert "unreachable: geobserver" in status
        await pilot.press("s", "s", "s", "s", "s")  # by health: UNKNOWN right after CRITICAL
        await pilot.pause()
        assert row_keys(table)[:2] == ["bserver/pgother", row]
        table.move_cursor(row=1)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        assert ("geobserver is unreachable and none of its servers is known yet: "
                "ssh: connection refused") in notifications(app)
        await pilot.press("r")
        await wait_polls(pilot, app, 2)
        assert sorted(row_keys(table)) == ["bserver/pgother", "bserver/pgserver",
                                           "geobserver/pgserver"]
        status = text_of(app.screen.query_one("#status-line", Static))
        assert "unreachable" not in status


async def test_the_fleet_view_is_current_when_shown_again_after_a_poll_behind_another_view(
) -> None:
    first = many_servers(3)
    app, _ = build([first, with_stream_lag(first, 9999)])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_polls(pilot, app, 1)
        table = app.screen.query_one(FleetTable)
        assert cell(table, "bserver/pg00", "stream") == "0 B"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ServerScreen))
        await pilot.press("r")  # the poll lands while the fleet view is covered
        await wait_polls(pilot, app, 2)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen), timeout=1.0)
        assert cell(app.screen.query_one(FleetTable), "bserver/pg00", "stream") == "9.8 KiB"
