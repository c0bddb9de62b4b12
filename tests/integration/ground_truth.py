"""Facts read independently of drconsole: Barman's files as root, psql, and the barman CLI."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from dr_console.config import load_config
from dr_console.core.barman_versions import Capabilities, Feature
from dr_console.core.collector import Collector
from dr_console.lab.lab import Lab
from dr_console.models import FleetSnapshot, ServerSnapshot

SERVER = "pgserver"
STREAM_SERVER = "pgstream"  # backup_method = postgres, WAL by streaming only
LAB_SERVERS = (SERVER, STREAM_SERVER)
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


def capabilities(lab: Lab) -> Capabilities:
    """What the lab's Barman does (the version it was built with)."""
    return Capabilities.from_version_text(lab.settings.barman_version)


def xlogdb_segments(lab: Lab, node: str, server: str = SERVER) -> list[str]:
    wals = lab.barman_home(node) / server / "wals"
    path = Path(capabilities(lab).xlogdb_file(server, str(wals), None))
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


def _backup_infos(lab: Lab, node: str, server: str) -> dict[str, Path]:
    """backup id -> its backup.info: meta/<id>-backup.info from Barman 3.13.2, before that
    base/<id>/backup.info."""
    home = lab.barman_home(node) / server
    if capabilities(lab).has(Feature.META_DIRECTORY):
        return {p.name.removesuffix("-backup.info"): p
                for p in sorted((home / "meta").glob("*-backup.info"))}
    return {p.parent.name: p for p in sorted((home / "base").glob("*/backup.info"))}


def meta_backups(lab: Lab, node: str, server: str = SERVER) -> dict[str, str]:
    """backup id -> status, from the backup.info files Barman writes."""
    out = {}
    for backup_id, info in _backup_infos(lab, node, server).items():
        status = next(
            (
                line.split("=", 1)[1]
                for line in info.read_text().splitlines()
                if line.startswith("status=")
            ),
            "?",
        )
        out[backup_id] = status
    return out


def barman_processes(lab: Lab, node: str, server: str = SERVER) -> set[tuple[str, int]]:
    """Barman's tasks for SERVER: `list-processes` (3.14+), else the node user's processes
    whose command line is `barman … <task> <server>`."""
    if capabilities(lab).has(Feature.LIST_PROCESSES):
        data: dict[str, Any] = lab.barman_json(node, "list-processes", server)
        return {(p["name"], int(p["pid"])) for p in data.get(server, []) if p}
    uid = lab.account(node).uid
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if proc.stat().st_uid != uid:
                continue
            words = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(w.endswith("/barman") or w == "barman" for w in words) and server in words:
            tasks = [w for w in words if w in ("receive-wal", "backup", "archive-wal",
                                               "sync-wals", "sync-backup")]
            if tasks:
                found.add((tasks[0], int(proc.name)))
    return found


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


def server(fleet: FleetSnapshot, node: str, name: str = SERVER) -> ServerSnapshot:
    snap = fleet.nodes[node]
    assert snap.reachable, f"{node} unreachable: {snap.error}"
    return snap.servers[name]
