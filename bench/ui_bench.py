"""How the console's event loop holds up while it applies fleets of N servers on 2 nodes.

    .venv/bin/python -m bench.ui_bench [--servers 30] [--presses 40]

Replays the fleet recorded from the lab (tests/recordings/fleet-lab.json) widened to N servers
per node, one new snapshot per poll (every second), in the real app (headless, 120x40), while
arrow keys move the fleet table's cursor. Prints the event-loop stalls (a 5 ms ticker's
lateness: what a key press waits for at most before it is handled), the time spent applying
each snapshot, and the Pilot press+settle round trip (which includes Pilot's own settling, ~90 ms
even for one server, so read it as an upper bound). Prints, never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dr_console.config import Config, ConsoleConfig, NodeConfig
from dr_console.core.snapshot_io import fleet_from_json
from dr_console.models import BackupDetail, FleetSnapshot, NodeRole
from dr_console.tui.app import DrConsoleApp
from dr_console.tui.launch import make_app

RECORDING = Path(__file__).resolve().parent.parent / "tests" / "recordings" / "fleet-lab.json"


class Replay:
    """A collector that hands out prepared snapshots, one per poll."""

    def __init__(self, snapshots: list[FleetSnapshot]) -> None:
        self.snapshots = snapshots
        self.polls = 0
        self.cycle_timeout = 60.0

    async def collect(self, *, force_slow: bool = False) -> FleetSnapshot:
        self.polls += 1
        return self.snapshots[min(self.polls, len(self.snapshots)) - 1]

    async def show_backup(self, node: str, server: str, backup_id: str) -> BackupDetail:
        raise LookupError("not recorded")

    async def close(self) -> None:
        return None


def widened(fleet: FleetSnapshot, servers: int, shift: float) -> FleetSnapshot:
    nodes = {}
    for name, node in fleet.nodes.items():
        template = next(iter(node.servers.values()))
        copies = {
            f"fleet{i:02d}": replace(template, server=f"fleet{i:02d}") for i in range(servers)
        }
        nodes[name] = replace(
            node, servers=copies, taken_at=node.taken_at + timedelta(seconds=shift)
        )
    return replace(fleet, nodes=nodes, taken_at=fleet.taken_at + timedelta(seconds=shift))


def _timed(cls: type, name: str, into: list[float]) -> None:
    original: Callable[..., Any] = getattr(cls, name)

    def wrapper(self: object, *args: object, **kwargs: object) -> Any:
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            into.append((time.perf_counter() - started) * 1000)

    setattr(cls, name, wrapper)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def run(servers: int, presses: int) -> None:
    base = fleet_from_json(RECORDING.read_text())
    snapshots = [widened(base, servers, i) for i in range(presses + 20)]
    config = Config(
        console=ConsoleConfig(refresh_interval=1.0),
        nodes=tuple(
            NodeConfig(n.node, n.role, site=n.site,
                       primary="bserver" if n.role is NodeRole.PASSIVE else None)
            for n in base.nodes.values()
        ),
    )  # fmt: skip
    applied: list[float] = []
    _timed(DrConsoleApp, "on_snapshot_ready", applied)
    replay = Replay(snapshots)
    clock = snapshots[-1].taken_at

    def now() -> datetime:
        return clock

    app = make_app(config, collector=replay, now=now)
    stalls: list[float] = []
    round_trips: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(2)
        running = True

        async def ticker() -> None:
            loop = asyncio.get_running_loop()
            while running:
                started = loop.time()
                await asyncio.sleep(0.005)
                stalls.append((loop.time() - started - 0.005) * 1000)

        tick = asyncio.create_task(ticker())
        for i in range(presses):
            started = time.perf_counter()
            await pilot.press("down" if i % 20 < 10 else "up")
            await pilot.pause()
            round_trips.append((time.perf_counter() - started) * 1000)
        running = False
        await tick
    rows = servers * len(base.nodes)
    print(f"{rows} rows, {replay.polls} polls applied")
    print(
        f"  event-loop stall ms: p50 {_pct(stalls, 0.5):.1f}  p95 {_pct(stalls, 0.95):.1f}"
        f"  p99 {_pct(stalls, 0.99):.1f}  max {max(stalls):.1f}  ({len(stalls)} ticks)"
    )
    print(f"  apply snapshot ms:   p50 {statistics.median(applied):.1f}  max {max(applied):.1f}")
    p50, p95 = _pct(round_trips, 0.5), _pct(round_trips, 0.95)
    print(f"  press+settle ms:     p50 {p50:.1f}  p95 {p95:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--servers", default="1,10,30", help="servers per node, comma separated")
    parser.add_argument("--presses", type=int, default=40)
    args = parser.parse_args()
    for n in (int(x) for x in args.servers.split(",")):
        asyncio.run(run(n, args.presses))


if __name__ == "__main__":
    main()
