"""Helpers for the Pilot tests: build the app through make_app, wait for polls, read cells."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from dr_console.config import Config
from dr_console.models import FleetSnapshot
from dr_console.tui.app import DrConsoleApp
from dr_console.tui.launch import make_app
from tests.tui.fleet_fixture import T0, config
from tests.tui.replay import ReplayCollector

FROZEN = T0 + timedelta(seconds=30)


def frozen() -> datetime:
    return FROZEN


def build(
    snapshots: Sequence[FleetSnapshot | Exception],
    *,
    cfg: Config | None = None,
    delay: float = 0.0,
    now: Callable[[], datetime] = frozen,
    **kwargs: object,
) -> tuple[DrConsoleApp, ReplayCollector]:
    collector = ReplayCollector(snapshots, delay=delay)
    app = make_app(cfg or config(), collector=collector, now=now, **kwargs)  # type: ignore[arg-type]
    return app, collector


async def wait_for(
    pilot: Pilot[object], condition: Callable[[], bool], timeout: float = 5.0
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met within the timeout")
        await pilot.pause(0.02)
    await pilot.pause()


async def wait_polls(pilot: Pilot[object], app: DrConsoleApp, count: int) -> None:
    await wait_for(pilot, lambda: app.polls >= count)


def cell(table: DataTable[Text], row: str, column: str | int) -> str:
    value = table.get_row(row)[column] if isinstance(column, int) else table.get_cell(row, column)
    return value.plain if isinstance(value, Text) else str(value)


def row_keys(table: DataTable[Text]) -> list[str]:
    return [str(row.key.value) for row in table.ordered_rows]


def text_of(widget: Static) -> str:
    return str(widget.render())


def notifications(app: DrConsoleApp) -> list[str]:
    return [n.message for n in app._notifications]


async def type_text(pilot: Pilot[object], text: str) -> None:
    """Type TEXT key by key (a space is the key "space")."""
    await pilot.press(*("space" if c == " " else c for c in text))
