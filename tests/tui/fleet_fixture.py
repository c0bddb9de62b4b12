"""A small hand-built fleet for the Pilot tests (the SVG snapshots use the lab recording).

Two sites: bserver (primary, site X) with pgserver and pgother; geobserver (passive, site Y)
with a copy of pgserver that lags. Times are fixed so ages render the same every run.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from dr_console.config import Config, ConsoleConfig, NodeConfig
from dr_console.models import (
    ArchiveQueue,
    ArchiverStats,
    Backup,
    BackupCatalogue,
    BarmanProcess,
    FleetSnapshot,
    GeoReplica,
    NodeRole,
    NodeSnapshot,
    RecoveryWindow,
    ReplicationClient,
    ServerSnapshot,
    WalStream,
)

T0 = datetime(2026, 11, 30, 17, 30, 0, tzinfo=UTC)


def config() -> Config:
    return Config(
        console=ConsoleConfig(refresh_interval=5.0),
        nodes=(
            NodeConfig("bserver", NodeRole.PRIMARY, site="X"),
            NodeConfig("geobserver", NodeRole.PASSIVE, site="Y", primary="bserver"),
        ),
    )


def _backups(at: datetime, extra: tuple[Backup, ...] = ()) -> tuple[Backup, ...]:
    return (
        *extra,
        Backup(
            "20261130T171940",
            "DONE",
            "rsync",
            "nightly",
            end_time=at - timedelta(minutes=10),
            size_bytes=22 * 1024 * 1024,
            wal_size_bytes=48 * 1024 * 1024,
            deduplicated_size_bytes=8400,
            retention_status="VALID",
        ),
        Backup(
            "20261130T170102",
            "DONE",
            "rsync",
            end_time=at - timedelta(minutes=29),
            size_bytes=21 * 1024 * 1024,
            wal_size_bytes=16 * 1024 * 1024,
            deduplicated_size_bytes=21 * 1024 * 1024,
            retention_status="VALID",
        ),
    )


def _primary(server: str, at: datetime, *, lag: int, running: bool, wal: str) -> ServerSnapshot:
    stream = WalStream(
        taken_at=at,
        streaming_archiver=True,
        receive_wal_running=running,
        receive_wal_pid=4242 if running else None,
        slot_name="barman",
        slot_active=running,
        slot_restart_lsn="0/B000000",
        slot_retained_bytes=lag,
        slot_wal_status="reserved",
        receiver=ReplicationClient(
            "barman_receive_wal",
            "streaming",
            sent_lsn="0/B000148",
            write_lsn="0/B000148",
            flush_lsn="0/B000000",
        )
        if running
        else None,
        server_lsn="0/B000148",
        lag_bytes=lag,
        lag_seconds=1.0 if running else None,
    )
    queue = ArchiveQueue(
        taken_at=at,
        archiver_enabled=True,
        pg=ArchiverStats(11, 0, wal, at - timedelta(seconds=40), None, None, None, 0),
        barman_failed_count=0,
        last_archived_wal=wal,
        last_archived_time=at - timedelta(seconds=40),
        incoming_count=0,
        streaming_count=1,
        errors_count=0,
        archived_wals_per_hour=12.5,
    )
    return ServerSnapshot(
        "bserver",
        server,
        NodeRole.PRIMARY,
        "X",
        at,
        wal_stream=stream,
        archive_queue=queue,
        catalogue=BackupCatalogue(at, backups=_backups(at)),
        window=RecoveryWindow(
            at - timedelta(minutes=30),
            at - timedelta(seconds=40),
            "20261130T170102",
            "20261130T171940",
            40.0,
        ),
    )


def _passive(at: datetime, *, segments: int) -> ServerSnapshot:
    geo = GeoReplica(
        taken_at=at,
        passive_node="geobserver",
        primary_node="bserver",
        missing_backups=(),
        syncing_backups=("20261130T171940",),
        primary_last_wal="00000001000000000000000B",
        passive_last_wal="000000010000000000000009",
        wal_lag_segments=segments,
        wal_lag_bytes=segments * 16 * 1024 * 1024,
        wal_lag_seconds=95.0,
        last_sync=at - timedelta(seconds=50),
        sync_processes=(BarmanProcess("sync-wals", 777),),
    )
    syncing = Backup("20261130T171940", "SYNCING", "full")
    return ServerSnapshot(
        "geobserver",
        "pgserver",
        NodeRole.PASSIVE,
        "Y",
        at,
        catalogue=BackupCatalogue(at, backups=(syncing, *_backups(at)[1:])),
        geo=geo,
        window=RecoveryWindow(
            at - timedelta(minutes=30),
            at - timedelta(minutes=2),
            "20261130T170102",
            "20261130T170102",
            120.0,
        ),
    )


def fleet(
    at: datetime = T0,
    *,
    lag: int = 328,
    other_wal: str = "00000001000000000000000A",
    geo_segments: int = 2,
) -> FleetSnapshot:
    primary = {
        "pgserver": _primary("pgserver", at, lag=lag, running=True, wal="00000001000000000000000B"),
        "pgother": _primary("pgother", at, lag=0, running=False, wal=other_wal),
    }
    passive = {"pgserver": _passive(at, segments=geo_segments)}
    return FleetSnapshot(
        at,
        {
            "bserver": NodeSnapshot("bserver", NodeRole.PRIMARY, "X", at, True, servers=primary),
            "geobserver": NodeSnapshot(
                "geobserver", NodeRole.PASSIVE, "Y", at, True, servers=passive
            ),
        },
    )


def with_node_down(base: FleetSnapshot, node: str, error: str) -> FleetSnapshot:
    nodes = dict(base.nodes)
    nodes[node] = replace(nodes[node], reachable=False, error=error, servers={})
    return replace(base, nodes=nodes)


def with_stream_lag(base: FleetSnapshot, lag: int, node: str = "bserver") -> FleetSnapshot:
    """BASE with every server of NODE reporting a stream lag of LAG bytes."""
    nodes = dict(base.nodes)
    servers = {
        name: replace(s, wal_stream=replace(s.wal_stream, lag_bytes=lag))  # type: ignore[type-var]
        for name, s in nodes[node].servers.items()
    }
    nodes[node] = replace(nodes[node], servers=servers)
    return replace(base, nodes=nodes)


def many_servers(count: int, at: datetime = T0) -> FleetSnapshot:
    """A primary node with `count` servers, to make the fleet table scroll."""
    servers = {
        f"pg{i:02d}": _primary(
            f"pg{i:02d}", at, lag=i, running=True, wal="00000001000000000000000B"
        )
        for i in range(count)
    }
    return FleetSnapshot(
        at, {"bserver": NodeSnapshot("bserver", NodeRole.PRIMARY, "X", at, True, servers=servers)}
    )
