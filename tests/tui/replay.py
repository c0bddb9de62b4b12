"""A real fleet source for the TUI tests: it replays recorded or built FleetSnapshots in order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from dr_console.models import BackupDetail, FleetSnapshot


class ReplayCollector:
    """Returns the given snapshots one per collect() (the last one repeats).

    An Exception in the sequence is raised by that collect(), as a collector bug would be.
    """

    def __init__(self, snapshots: Sequence[FleetSnapshot | Exception], *, delay: float = 0.0):
        self.snapshots = list(snapshots)
        self.delay = delay
        self.calls: list[bool] = []  # force_slow of each collect()
        self.in_flight = 0
        self.max_in_flight = 0
        self.closed = False
        self.detail_requests: list[tuple[str, str, str]] = []
        self.cycle_timeout = 60.0

    def push(self, item: FleetSnapshot | Exception) -> None:
        self.snapshots.append(item)

    async def collect(self, *, force_slow: bool = False) -> FleetSnapshot:
        self.calls.append(force_slow)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            index = min(len(self.calls), len(self.snapshots)) - 1
            item = self.snapshots[index]
            if isinstance(item, Exception):
                raise item
            return item
        finally:
            self.in_flight -= 1

    async def show_backup(self, node: str, server: str, backup_id: str) -> BackupDetail:
        """The detail as far as the recorded catalogue knows it."""
        self.detail_requests.append((node, server, backup_id))
        for item in reversed(self.snapshots):
            if isinstance(item, FleetSnapshot):
                snap = item.nodes[node].servers[server]
                assert snap.catalogue is not None
                for backup in snap.catalogue.backups:
                    if backup.backup_id == backup_id:
                        return BackupDetail(server, backup, begin_lsn="0/A000028")
        raise LookupError(f"backup {backup_id} not found on {node}")

    async def close(self) -> None:
        self.closed = True
