"""SVG snapshots of the fleet and server views at 80x24 and 120x40.

Deterministic: the fleet recorded from the real lab (tests/recordings/fleet-lab.json, written by
the recording script with fleet_to_json), replayed by ReplayCollector, with the clock frozen 30 s
after the recording. Update with `pytest tests/tui/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from textual.pilot import Pilot

from dr_console.config import Config, ConsoleConfig, NodeConfig
from dr_console.core.snapshot_io import fleet_from_json
from dr_console.models import FleetSnapshot, NodeRole
from dr_console.tui.app import DrConsoleApp
from dr_console.tui.launch import make_app
from dr_console.tui.screens.server import ServerScreen
from tests.tui.replay import ReplayCollector

RECORDING = Path(__file__).resolve().parents[1] / "recordings" / "fleet-lab.json"
SIZES = [(80, 24), (120, 40)]


def lab_fleet() -> FleetSnapshot:
    if not RECORDING.is_file():
        pytest.skip(f"{RECORDING.name} is not recorded yet (the lab recording script writes it)")
    return fleet_from_json(RECORDING.read_text(encoding="utf-8"))


def lab_config(fleet: FleetSnapshot) -> Config:
    nodes = tuple(
        NodeConfig(
            node.node,
            node.role,
            site=node.site,
            primary=next((n.node for n in fleet.nodes.values() if n.role is NodeRole.PRIMARY), None)
            if node.role is NodeRole.PASSIVE
            else None,
        )
        for node in fleet.nodes.values()
    )
    return Config(console=ConsoleConfig(), nodes=nodes)


def lab_app() -> tuple[DrConsoleApp, FleetSnapshot]:
    fleet = lab_fleet()
    frozen = fleet.taken_at + timedelta(seconds=30)

    def now() -> datetime:
        return frozen

    app = make_app(lab_config(fleet), collector=ReplayCollector([fleet]), now=now)
    return app, fleet


async def _first_poll(pilot: Pilot[object]) -> None:
    app = pilot.app
    assert isinstance(app, DrConsoleApp)
    for _ in range(250):
        if app.polls:
            break
        await pilot.pause(0.02)
    assert app.polls, "the replayed poll did not arrive"
    await pilot.pause()


def _open_primary(fleet: FleetSnapshot) -> Callable[[Pilot[object]], object]:
    primary = next(s for s in fleet.servers() if s.role is NodeRole.PRIMARY)

    async def run_before(pilot: Pilot[object]) -> None:
        await _first_poll(pilot)
        app = pilot.app
        assert isinstance(app, DrConsoleApp)
        app.open_server(f"{primary.node}/{primary.server}")
        for _ in range(250):  # a loaded machine may take a while to mount the view
            if isinstance(app.screen, ServerScreen) and app.screen.ready:
                break
            await pilot.pause(0.02)
        await pilot.pause(0.2)

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_fleet_view(snap_compare: Callable[..., bool], size: tuple[int, int]) -> None:
    app, _ = lab_app()
    assert snap_compare(app, terminal_size=size, run_before=_first_poll)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_server_view(snap_compare: Callable[..., bool], size: tuple[int, int]) -> None:
    app, fleet = lab_app()
    assert snap_compare(app, terminal_size=size, run_before=_open_primary(fleet))
