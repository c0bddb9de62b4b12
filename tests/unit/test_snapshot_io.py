"""Recorded fleets (scripts/record_fleet.py, from the lab) survive JSON losslessly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dr_console.core.snapshot_io import fleet_from_json, fleet_to_json
from dr_console.models import FleetSnapshot, NodeRole

RECORDINGS = Path(__file__).resolve().parent.parent / "recordings"


@pytest.mark.parametrize("name", ["fleet-lab.json", "fleet-lab-degraded.json"])
def test_recorded_fleet_round_trips(name: str) -> None:
    text = (RECORDINGS / name).read_text()
    fleet = fleet_from_json(text)
    assert isinstance(fleet, FleetSnapshot)
    written = json.loads(fleet_to_json(fleet))
    recorded = json.loads(text)
    # The recordings predate the servers' barman_version and the geo state's sync_blocked
    # (`make recordings` refreshes them): those fields, null, are all the round trip may add.
    for node in written["nodes"].values():
        for server_name, server in node["servers"].items():
            was = recorded["nodes"][node["node"]]["servers"][server_name]
            if "barman_version" not in was:
                assert server.pop("barman_version") is None
            if server.get("geo") is not None and "sync_blocked" not in was["geo"]:
                assert server["geo"].pop("sync_blocked") is None
    assert written == recorded
    assert fleet_from_json(fleet_to_json(fleet)) == fleet
    passive = fleet.nodes["geobserver"]
    assert passive.role is NodeRole.PASSIVE
    assert passive.servers["pgserver"].geo is not None


def test_degraded_recording_shows_what_was_broken() -> None:
    fleet = fleet_from_json((RECORDINGS / "fleet-lab-degraded.json").read_text())
    primary = fleet.nodes["bserver"].servers["pgserver"]
    assert primary.wal_stream is not None and primary.wal_stream.receive_wal_running is False
    geo = fleet.nodes["geobserver"].servers["pgserver"].geo
    assert geo is not None and (geo.wal_lag_segments or 0) > 0
