"""Facts read independently of drconsole: Barman's files as root, psql, and the barman CLI."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from dr_console.config import load_config
from dr_console.core.collector import Collector
from dr_console.lab.lab import Lab
from dr_console.models import FleetSnapshot, ServerSnapshot

SERVER = "pgserver"
T = TypeVar("T")


def wait_until(
    what: str, probe: Callable[[], T | None], timeout: float = 90.0, interval: float = 1.0
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def xlogdb_segments(lab: Lab, node: str) -> list[str]:
    path = lab.barman_home(node) / SERVER / "wals" / f"{SERVER}-xlog.db"
    names = [line.split("\t")[0] for line in path.read_text().splitlines() if line.strip()]
    return [n for n in names if len(n) == 24]


def ensure_streaming(lab: Lab) -> None:
    """receive-wal running on bserver (cron starts it): the state a healthy lab is in."""

    def running() -> bool:
        if any(n == "receive-wal" for n, _ in barman_processes(lab, "bserver")):
            return True
        lab.barman("bserver", "cron", json=False)
        return False

    wait_until("receive-wal to run on bserver", running, timeout=120, interval=2)


def meta_backups(lab: Lab, node: str) -> dict[str, str]:
    """backup id -> status, from meta/<id>-backup.info (FINDINGS §7)."""
    out = {}
    for info in sorted((lab.barman_home(node) / SERVER / "meta").glob("*-backup.info")):
        status = next(
            (
                line.split("=", 1)[1]
                for line in info.read_text().splitlines()
                if line.startswith("status=")
            ),
            "?",
        )
        out[info.name.removesuffix("-backup.info")] = status
    return out


def barman_processes(lab: Lab, node: str) -> set[tuple[str, int]]:
    data: dict[str, Any] = lab.barman_json(node, "list-processes", SERVER)
    return {(p["name"], int(p["pid"])) for p in data.get(SERVER, []) if p}


def psql_value(lab: Lab, sql: str) -> str:
    return lab.psql(sql).strip()


def collect(config_path: Path, *, force_slow: bool = True) -> FleetSnapshot:
    async def once() -> FleetSnapshot:
        collector = Collector(load_config(config_path))
        try:
            return await collector.collect(force_slow=force_slow)
        finally:
            await collector.close()

    return asyncio.run(once())


def server(fleet: FleetSnapshot, node: str) -> ServerSnapshot:
    snap = fleet.nodes[node]
    assert snap.reachable, f"{node} unreachable: {snap.error}"
    return snap.servers[SERVER]
