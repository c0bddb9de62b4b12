"""Pilot tests of the app-wide bindings: pause, interval, refresh, help, palette, keymap, quit."""

from __future__ import annotations

from textual.command import CommandPalette
from textual.widgets import DataTable, Static

from dr_console.tui import keymap
from dr_console.tui.screens.fleet import FleetScreen
from dr_console.tui.screens.help import HelpScreen
from tests.tui.fleet_fixture import fleet
from tests.tui.helpers import build, cell, notifications, text_of, wait_for, wait_polls


def status(app: object) -> str:
    return text_of(app.screen.query_one("#status-line", Static))  # type: ignore[attr-defined]


async def test_space_pauses_polling_and_resumes_it() -> None:
    app, collector = build([fleet()])
    app.interval = 1.0
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_polls(pilot, app, 1)
        await pilot.press("space")
        assert "PAUSED" in status(app)
        assert "polling paused (space resumes)" in notifications(app)
        calls = len(collector.calls)
        await pilot.pause(1.5)
        assert len(collector.calls) == calls
        await pilot.press("space")
        await wait_for(pilot, lambda: len(collector.calls) > calls)
        assert "PAUSED" not in status(app)


async def test_plus_and_minus_change_the_interval_within_bounds() -> None:
    app, _ = build([fleet()])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_polls(pilot, app, 1)
        await pilot.press("plus")
        assert app.interval == 10.0
        assert "every 10s" in status(app)
        assert "refresh every 10s" in notifications(app)
        for _ in range(12):
            await pilot.press("plus")
        assert app.interval == 300.0
        assert "every 5m" in status(app)
        for _ in range(12):
            await pilot.press("minus")
        assert app.interval == 1.0
        assert "every 1s" in status(app)


async def test_r_forces_a_slow_refresh_and_polls_never_overlap() -> None:
    app, collector = build([fleet()], delay=0.3)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_polls(pilot, app, 1)
        for _ in range(5):
            await pilot.press("r")
        await wait_for(pilot, lambda: app.polls >= 3 and not app._polling)
        await pilot.pause(0.5)
        assert collector.max_in_flight == 1
        assert collector.calls[0] is True  # the first poll reads the slow facts too
        assert collector.calls[1] is True  # and so does `r`
        # the first press starts a poll; the four pressed while it runs make ONE more
        assert collector.calls == [True, True, True]


async def test_help_lists_every_binding_of_the_registry() -> None:
    app, _ = build([fleet()])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_polls(pilot, app, 1)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one("#help-table", DataTable)
        for spec in keymap.REGISTRY:
            assert cell(table, spec.id, 2) == spec.help
        assert cell(table, "pause", 1) == "space"
        assert cell(table, "slower", 1) == "+"
        await pilot.press("escape")
        assert isinstance(app.screen, FleetScreen)


async def test_colon_opens_the_palette_which_runs_actions() -> None:
    app, _ = build([fleet()])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_polls(pilot, app, 1)
        await pilot.press("colon")
        await wait_for(pilot, lambda: CommandPalette.is_open(app))
        await pilot.press(*"pause")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.paused)
        assert isinstance(app.screen, FleetScreen)
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: CommandPalette.is_open(app))
        await pilot.press(*"theme: drconsole-light")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.theme == "drconsole-light")


async def test_keys_can_be_rebound_by_id() -> None:
    app, _ = build([fleet()])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_polls(pilot, app, 1)
        problems = app.set_keymap_overrides({"pause": "p", "nosuch": "x"})
        assert problems == ["keymap: unknown binding id 'nosuch'"]
        await pilot.press("p")
        assert app.paused
        await pilot.press("space")  # no longer bound
        assert app.paused
        await pilot.press("question_mark")
        help_table = app.screen.query_one("#help-table", DataTable)
        assert cell(help_table, "pause", 1) == "p"


async def test_q_quits_with_status_zero_and_closes_the_collector() -> None:
    app, collector = build([fleet()])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_polls(pilot, app, 1)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    assert collector.closed
