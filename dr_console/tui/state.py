"""What the console knows, merged poll after poll. Pure: no Textual here.

Each pane keeps its last good value. When a poll of that part fails (the pane's own error, its
node unreachable, or the whole collect failing) the value stays and the pane says STALE with the
error, so the console never shows an old figure as if it were current.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from dr_console.core import fmt
from dr_console.models import (
    ArchiveQueue,
    BackupCatalogue,
    FleetSnapshot,
    GeoReplica,
    Health,
    NodeSnapshot,
    ServerSnapshot,
    WalStream,
)

LAG_HISTORY = 120  # points kept for the sparkline: 10 minutes at the default 5 s interval


class _HasError(Protocol):
    @property
    def taken_at(self) -> datetime: ...

    @property
    def error(self) -> str | None: ...


P = TypeVar("P", bound=_HasError)


@dataclass
class PaneState(Generic[P]):
    value: P | None = None  # the last good value
    good_at: datetime | None = None
    error: str | None = None  # the error of the latest poll of this pane, None if it worked

    def update(self, new: P | None) -> None:
        if new is None:  # not probed this round (slow facts) or not applicable: no news
            return
        if new.error:
            self.error = new.error
            return
        self.value = new
        self.good_at = new.taken_at
        self.error = None


@dataclass
class ServerState:
    node: str
    server: str
    snapshot: ServerSnapshot  # the latest snapshot received for this server
    wal: PaneState[WalStream] = field(default_factory=PaneState)
    archive: PaneState[ArchiveQueue] = field(default_factory=PaneState)
    catalogue: PaneState[BackupCatalogue] = field(default_factory=PaneState)
    geo: PaneState[GeoReplica] = field(default_factory=PaneState)
    node_error: str | None = None  # the node could not be polled in the latest round
    health: Health = Health.UNKNOWN
    health_detail: str = ""
    lag: deque[tuple[datetime, int]] = field(default_factory=lambda: deque(maxlen=LAG_HISTORY))

    @property
    def key(self) -> str:
        return row_key(self.node, self.server)

    def apply(self, snap: ServerSnapshot) -> None:
        self.snapshot = snap
        self.node_error = None
        self.wal.update(snap.wal_stream)
        self.archive.update(snap.archive_queue)
        self.catalogue.update(snap.catalogue)
        self.geo.update(snap.geo)
        stream = snap.wal_stream
        if stream is not None and not stream.error and stream.lag_bytes is not None:
            self.lag.append((stream.taken_at, stream.lag_bytes))


def row_key(node: str, server: str) -> str:
    return f"{node}/{server}"


@dataclass
class ConsoleState:
    fleet: FleetSnapshot | None = None
    servers: dict[str, ServerState] = field(default_factory=dict)
    poll_error: str | None = None  # the whole collect failed (a bug or a timeout)
    last_poll_at: datetime | None = None
    # Unreachable nodes whose servers the console has never seen: they get a row of their own.
    dark_nodes: dict[str, NodeSnapshot] = field(default_factory=dict)

    def apply(self, fleet: FleetSnapshot) -> None:
        self.fleet = fleet
        self.poll_error = None
        self.last_poll_at = fleet.taken_at
        self.dark_nodes = {}
        seen: set[str] = set()
        for node in fleet.nodes.values():
            if not node.reachable and not node.servers:
                error = node.error or "node unreachable"
                known_rows = [k for k in self.servers.values() if k.node == node.node]
                for known in known_rows:
                    known.node_error = error
                    known.health = Health.UNKNOWN
                    known.health_detail = error
                    seen.add(known.key)
                if not known_rows:
                    self.dark_nodes[node.node] = node
                continue
            for snap in node.servers.values():
                key = row_key(snap.node, snap.server)
                seen.add(key)
                state = self.servers.get(key)
                if state is None:
                    state = ServerState(snap.node, snap.server, snap)
                    self.servers[key] = state
                state.apply(snap)
                if not node.reachable:
                    state.node_error = node.error or "node unreachable"
        for key in set(self.servers) - seen:
            del self.servers[key]

    def why_no_server(self, key: str) -> str:
        """What to tell a user who acts on row KEY that has no server behind it."""
        node, _, _ = key.partition("/")
        dark = self.dark_nodes.get(node)
        if dark is not None and key not in self.servers:
            return (f"{node} is unreachable and none of its servers is known yet: "
                    f"{dark.error or 'no answer'}")
        return f"{key} is not in the fleet any more"

    def fail(self, error: str, at: datetime) -> None:
        self.poll_error = error
        self.last_poll_at = at

    def stale_reason(self, state: ServerState, pane: PaneState[P]) -> str | None:
        return self.poll_error or state.node_error or pane.error


def stamp(pane: PaneState[P], reason: str | None, now: datetime) -> str:
    """A pane's age line: "12s ago", or "STALE (1m ago): why" when the latest poll failed."""
    age = fmt.duration(fmt.age_seconds(pane.good_at, now))
    if reason:
        when = f"data {age} old" if pane.good_at else "no data yet"
        return f"STALE ({when}): {reason}"
    if pane.good_at is None:
        return "no data"
    return f"{age} ago"
