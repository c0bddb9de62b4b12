"""Figures the collector derives from one round's facts (recorded Barman layout, PostgreSQL facts
as the probe reads them), without a lab."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from barman_recordings import load

from dr_console.config import parse_config
from dr_console.core import checks
from dr_console.core.barman_parse import load_json, parse_show_servers
from dr_console.core.barman_versions import Capabilities
from dr_console.core.collector import Collector, _NodeRound
from dr_console.core.node_facts import ServerLayout
from dr_console.core.transport_local import LocalTransport
from dr_console.models import (
    FleetSnapshot,
    Health,
    NodeRole,
    NodeSnapshot,
    PostgresFacts,
    ReplicationSlot,
    ServerSnapshot,
)

NOW = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)
CONFIG = parse_config('[[nodes]]\nname = "bserver"\nssh = "bm@bserver"\n', Path("t.toml"))
MIB = 1024 * 1024


def layout() -> ServerLayout:
    shown = parse_show_servers(load_json(load("primary-show-servers")["stdout"], "show-servers"))
    return ServerLayout.from_show_servers(
        "pgserver", shown["pgserver"], Capabilities.from_version_text("3.19.1")
    )


def postgres(retained: int) -> PostgresFacts:
    slot = ReplicationSlot("barman", "physical", False, None, "0/5000000", retained, "reserved")
    return PostgresFacts(False, "15.18", "0/8700000", None, None, (), (slot,), NOW)


def test_with_receive_wal_stopped_the_unreceived_wal_is_the_stream_lag() -> None:
    collector = Collector(CONFIG, transport_factory=lambda node: LocalTransport(node.name))
    round_ = _NodeRound(True, None, None, None, None)
    stream = collector._wal_stream(layout(), (), postgres(130 * MIB), None, round_, NOW)
    assert stream.receive_wal_running is False and stream.receiver is None
    assert stream.lag_bytes == 130 * MIB  # server LSN - the slot's restart LSN, not "-"

    server = ServerSnapshot("bserver", "pgserver", NodeRole.PRIMARY, "X", NOW, wal_stream=stream)
    node = NodeSnapshot("bserver", NodeRole.PRIMARY, "X", NOW, True, servers={"pgserver": server})
    results = {r.check: r for r in checks.evaluate_server(server, FleetSnapshot(NOW, {
        "bserver": node}), CONFIG)}
    lag = results["stream_lag"]
    assert lag.status is Health.WARNING  # 130 MiB: over the 64 MiB warning, under 512 MiB
    assert lag.detail.startswith("130.0 MiB of WAL not received: nothing streams")
