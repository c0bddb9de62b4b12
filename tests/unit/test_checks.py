"""Health rules: thresholds, missing data is UNKNOWN (never a false OK), passive vs primary."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from dr_console.config import Config, ConsoleConfig, NodeConfig, Thresholds
from dr_console.core import checks
from dr_console.models import (
    ArchiveQueue,
    ArchiverStats,
    Backup,
    BackupCatalogue,
    BarmanCheck,
    FleetSnapshot,
    GeoReplica,
    Health,
    NodeRole,
    NodeSnapshot,
    ServerSnapshot,
    WalStream,
)

NOW = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)
CONFIG = Config(
    console=ConsoleConfig(thresholds=Thresholds()),
    nodes=(
        NodeConfig(name="bserver", role=NodeRole.PRIMARY),
        NodeConfig(name="geo", role=NodeRole.PASSIVE, primary="bserver"),
    ),
)


def _primary(**changes: object) -> ServerSnapshot:
    snap = ServerSnapshot(
        node="bserver",
        server="pgserver",
        role=NodeRole.PRIMARY,
        site="X",
        taken_at=NOW,
        catalogue=BackupCatalogue(
            taken_at=NOW,
            backups=(Backup("20261130T171940", "DONE", end_time=NOW - timedelta(hours=1)),),
        ),
        archive_queue=ArchiveQueue(
            taken_at=NOW,
            last_archived_wal="00000001000000000000000B",
            last_archived_time=NOW - timedelta(minutes=2),
            pg=ArchiverStats(10, 0, "00000001000000000000000B", NOW, None, None, None, 0),
        ),
        wal_stream=WalStream(
            taken_at=NOW,
            streaming_archiver=True,
            receive_wal_running=True,
            receive_wal_pid=42,
            slot_name="barman",
            slot_active=True,
            lag_bytes=1024,
        ),
        barman_checks=(BarmanCheck("ssh", True, "PostgreSQL server"),),
        barman_checks_at=NOW,
    )
    return replace(snap, **changes)  # type: ignore[arg-type]


def _results(server: ServerSnapshot) -> dict[str, Health]:
    node = NodeSnapshot(server.node, server.role, "X", NOW, True, servers={server.server: server})
    fleet = FleetSnapshot(NOW, {server.node: node})
    return {r.check: r.status for r in checks.evaluate_server(server, fleet, CONFIG)}


def test_a_healthy_primary_is_all_ok() -> None:
    results = _results(_primary())
    assert set(results.values()) == {Health.OK}
    assert {
        "backup_age",
        "wal_age",
        "receive_wal",
        "replication_slot",
        "stream_lag",
        "barman.ssh",
        "archiver_failures",
        "archive_queue",
    } <= set(results)


def test_receive_wal_down_and_slot_inactive_are_critical() -> None:
    stream = replace(_primary().wal_stream, receive_wal_running=False, slot_active=False)  # type: ignore[type-var]
    results = _results(_primary(wal_stream=stream))
    assert results["receive_wal"] is Health.CRITICAL
    assert results["replication_slot"] is Health.CRITICAL


def test_backup_age_thresholds() -> None:
    old = BackupCatalogue(
        taken_at=NOW,
        backups=(Backup("20261128T000000", "DONE", end_time=NOW - timedelta(hours=30)),),
    )
    assert _results(_primary(catalogue=old))["backup_age"] is Health.WARNING
    older = BackupCatalogue(
        taken_at=NOW, backups=(Backup("20261127T000000", "DONE", end_time=NOW - timedelta(days=3)),)
    )
    assert _results(_primary(catalogue=older))["backup_age"] is Health.CRITICAL
    running_only = BackupCatalogue(taken_at=NOW, backups=(Backup("20261130T175900", "EMPTY"),))
    assert _results(_primary(catalogue=running_only))["backup_age"] is Health.CRITICAL


def test_unknown_is_not_ok() -> None:
    stream = replace(_primary().wal_stream, receive_wal_running=None, lag_bytes=None, error="x")  # type: ignore[type-var]
    results = _results(_primary(wal_stream=stream, catalogue=None))
    assert results["receive_wal"] is Health.UNKNOWN
    assert results["stream_lag"] is Health.UNKNOWN
    assert results["backup_age"] is Health.UNKNOWN


def test_failing_archiver_is_critical() -> None:
    failing = ArchiverStats(
        10,
        3,
        "00000001000000000000000A",
        NOW - timedelta(minutes=5),
        "00000001000000000000000B",
        NOW - timedelta(minutes=1),
        None,
        4,
    )
    queue = replace(_primary().archive_queue, pg=failing)  # type: ignore[type-var]
    assert _results(_primary(archive_queue=queue))["archiver_failures"] is Health.CRITICAL


def test_a_streaming_only_server_does_not_judge_postgresqls_archiver() -> None:
    """archiver = off (backup_method = postgres, WAL by streaming): a failing archive_command
    on PostgreSQL feeds some other server, so it is neither this server's failure nor queue."""
    failing = ArchiverStats(10, 3, "00000001000000000000000A", NOW - timedelta(minutes=5),
                            "00000001000000000000000B", NOW - timedelta(minutes=1), None, 400)
    queue = replace(_primary().archive_queue, pg=failing, archiver_enabled=False)  # type: ignore[type-var]
    snap = _primary(archive_queue=queue)
    results = _results(snap)
    assert results["archiver_failures"] is Health.OK
    assert results["archive_queue"] is Health.OK
    node = NodeSnapshot("bserver", NodeRole.PRIMARY, "X", NOW, True, servers={"pgserver": snap})
    details = {r.check: r.detail for r in checks.evaluate_server(snap, FleetSnapshot(
        NOW, {"bserver": node}), CONFIG)}
    assert "streaming only" in details["archive_queue"]


def test_failed_barman_check_is_critical_and_says_failed() -> None:
    snap = _primary(barman_checks=(BarmanCheck("replication_slot", False, "slot missing"),))
    node = NodeSnapshot("bserver", NodeRole.PRIMARY, "X", NOW, True, servers={"pgserver": snap})
    fleet = FleetSnapshot(NOW, {"bserver": node})
    result = next(
        r
        for r in checks.evaluate_server(snap, fleet, CONFIG)
        if r.check == "barman.replication_slot"
    )
    assert result.status is Health.CRITICAL and result.detail.startswith("FAILED")


def test_geo_lag_grades_and_missing_backups() -> None:
    geo = GeoReplica(
        taken_at=NOW,
        passive_node="geo",
        primary_node="bserver",
        wal_lag_segments=5,
        last_sync=NOW - timedelta(minutes=1),
    )
    passive = _primary(node="geo", role=NodeRole.PASSIVE, geo=geo, wal_stream=None)
    assert _results(passive)["geo_wal_lag"] is Health.WARNING
    far = replace(
        geo,
        wal_lag_segments=40,
        missing_backups=("20261130T171940",),
        oldest_missing_end=NOW - timedelta(hours=3),
        last_sync=NOW - timedelta(hours=2),
    )
    results = _results(replace(passive, geo=far))
    assert results["geo_wal_lag"] is Health.CRITICAL
    assert results["geo_backups"] is Health.CRITICAL
    assert results["geo_last_sync"] is Health.CRITICAL


def test_a_stuck_wal_sync_is_a_warning_with_its_cause_even_right_after_a_sync() -> None:
    geo = GeoReplica(
        taken_at=NOW, passive_node="geo", primary_node="bserver", wal_lag_segments=0,
        last_sync=NOW - timedelta(seconds=30),
        sync_blocked="Barman's WAL sync is stuck: /b/pgstream/wals/sync-wals.info records "
                     "position 0",
    )  # fmt: skip
    passive = _primary(node="geo", role=NodeRole.PASSIVE, geo=geo, wal_stream=None)
    node = NodeSnapshot("geo", NodeRole.PASSIVE, "X", NOW, True, servers={passive.server: passive})
    found = checks.evaluate_server(passive, FleetSnapshot(NOW, {"geo": node}), CONFIG)
    result = next(r for r in found if r.check == "geo_last_sync")
    assert result.status is Health.WARNING
    assert result.detail == ("last sync 30s ago; Barman's WAL sync is stuck: "
                             "/b/pgstream/wals/sync-wals.info records position 0")
    late = replace(geo, last_sync=NOW - timedelta(hours=2))
    assert _results(replace(passive, geo=late))["geo_last_sync"] is Health.CRITICAL


def test_unreachable_node_is_unknown_and_worst_ranks_critical_first() -> None:
    node = NodeSnapshot("bserver", NodeRole.PRIMARY, "X", NOW, False, error="connection refused")
    fleet = FleetSnapshot(NOW, {"bserver": node})
    results = checks.evaluate_fleet(fleet, CONFIG)
    assert [(r.check, r.status) for r in results] == [("node_reachable", Health.UNKNOWN)]
    assert checks.worst(results) is Health.UNKNOWN
    mixed = [*results, replace(results[0], status=Health.CRITICAL)]
    assert checks.worst(mixed) is Health.CRITICAL


def test_a_just_finished_backup_is_not_late_on_the_passive_node() -> None:
    geo = GeoReplica(
        taken_at=NOW,
        passive_node="geo",
        primary_node="bserver",
        wal_lag_segments=0,
        last_sync=NOW - timedelta(seconds=20),
        missing_backups=("20261130T175940",),
        oldest_missing_end=NOW - timedelta(seconds=30),
    )
    passive = _primary(node="geo", role=NodeRole.PASSIVE, geo=geo, wal_stream=None)
    assert _results(passive)["geo_backups"] is Health.OK
    late = replace(geo, oldest_missing_end=NOW - timedelta(minutes=20))
    assert _results(replace(passive, geo=late))["geo_backups"] is Health.WARNING
