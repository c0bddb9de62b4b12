"""The collector against the real lab, compared with ground truth read independently."""

from __future__ import annotations

import asyncio
import time

import pytest
from ground_truth import (
    SERVER,
    barman_processes,
    collect,
    ensure_streaming,
    meta_backups,
    psql_value,
    server,
    wait_until,
    xlogdb_segments,
)

from dr_console.config import load_config
from dr_console.core import checks
from dr_console.core.collector import Collector
from dr_console.lab.lab import Lab
from dr_console.models import Health, NodeRole

pytestmark = pytest.mark.integration


def test_snapshot_matches_files_psql_and_barman(lab: Lab) -> None:
    # An idle lab archives nothing: make the last WAL fresh so wal_age judges a working archive.
    lab.barman("bserver", "switch-wal", "--force", "--archive", SERVER, json=False)
    # The lab is live (cron, streaming): bracket the collection between two readings.
    segments_before = xlogdb_segments(lab, "bserver")[-1]
    fleet = collect(lab.config_path)
    segments_after = xlogdb_segments(lab, "bserver")[-1]
    primary = server(fleet, "bserver")
    passive = server(fleet, "geobserver")
    assert primary.role is NodeRole.PRIMARY and passive.role is NodeRole.PASSIVE

    # catalogue == meta/*.info on each node
    for node, snap in (("bserver", primary), ("geobserver", passive)):
        assert snap.catalogue is not None
        assert {b.backup_id: b.status for b in snap.catalogue.backups} == meta_backups(lab, node)

    # last archived segment == last segment line of xlog.db
    assert primary.archive_queue is not None
    assert segments_before <= (primary.archive_queue.last_archived_wal or "") <= segments_after

    # running tasks == what `barman list-processes` says
    assert {(p.name, p.pid) for p in primary.processes} == barman_processes(lab, "bserver")
    assert primary.wal_stream is not None and primary.wal_stream.receive_wal_running is True

    # slot and receiver == psql
    slot_active = psql_value(
        lab, "select active from pg_replication_slots where slot_name='barman'"
    )
    assert primary.wal_stream.slot_name == "barman"
    assert primary.wal_stream.slot_active is (slot_active == "t")
    assert primary.wal_stream.receiver is not None
    assert primary.wal_stream.receiver.application_name == "barman_receive_wal"
    archived = int(psql_value(lab, "select archived_count from pg_stat_archiver"))
    assert primary.archive_queue.pg is not None
    assert primary.archive_queue.pg.archived_count <= archived  # taken just before

    # Barman's own check results are there, and the whole lab is healthy
    assert {c.name for c in primary.barman_checks} >= {"ssh", "receive_wal_running", "wal_level"}
    results = checks.evaluate_fleet(fleet, load_config(lab.config_path))
    bad = [r for r in results if r.status is not Health.OK]
    assert not bad, bad


async def test_new_backup_and_switch_wal_are_seen(lab: Lab) -> None:
    collector = Collector(load_config(lab.config_path))
    try:
        await collector.collect(force_slow=True)
        before = collector.stats.barman_calls
        metadata = [meta_backups(lab, n) for n in ("bserver", "geobserver")]
        fleet = await collector.collect()  # a fast cycle starts no barman process...
        changed = sum(
            1
            for n, m in zip(("bserver", "geobserver"), metadata, strict=True)
            if meta_backups(lab, n) != m
        )  # ...unless the catalogue changed under it (the lab is live): then one list-backups
        assert collector.stats.barman_calls - before <= changed

        result = await asyncio.to_thread(lab.barman, "bserver", "backup", "--wait", SERVER)
        assert result.returncode == 0, result.stdout + result.stderr
        newest = max(meta_backups(lab, "bserver"))
        # not forced: the changed backup metadata alone triggers a catalogue refresh
        fleet = await collector.collect()
        catalogue = fleet.nodes["bserver"].servers[SERVER].catalogue
        assert catalogue is not None and catalogue.backups[0].backup_id == newest
        assert catalogue.backups[0].status == "DONE"

        result = await asyncio.to_thread(
            lab.barman, "bserver", "switch-wal", "--force", "--archive", SERVER
        )
        assert result.returncode == 0, result.stdout + result.stderr
        fleet = await collector.collect()
        queue = fleet.nodes["bserver"].servers[SERVER].archive_queue
        assert queue is not None
        assert queue.last_archived_wal == xlogdb_segments(lab, "bserver")[-1]
    finally:
        await collector.close()


def test_receive_wal_stopped_is_seen_and_recovers(lab: Lab) -> None:
    lab.pause_cron("bserver")  # cron would restart receive-wal at once
    try:
        lab.barman("bserver", "receive-wal", "--stop", SERVER, json=False)
        wait_until(
            "receive-wal to stop",
            lambda: not any(n == "receive-wal" for n, _ in barman_processes(lab, "bserver")),
        )
        fleet = collect(lab.config_path)
        stream = server(fleet, "bserver").wal_stream
        assert stream is not None and stream.receive_wal_running is False
        results = {
            r.check: r
            for r in checks.evaluate_fleet(fleet, load_config(lab.config_path))
            if r.node == "bserver" and r.server == SERVER
        }
        assert results["receive_wal"].status is Health.CRITICAL
        assert results["barman.receive_wal_running"].status is Health.CRITICAL
    finally:
        lab.resume_cron("bserver")
        lab.barman("bserver", "cron", json=False)
    wait_until(
        "receive-wal to run again",
        lambda: any(n == "receive-wal" for n, _ in barman_processes(lab, "bserver")),
    )
    stream = server(collect(lab.config_path, force_slow=False), "bserver").wal_stream
    assert stream is not None and stream.receive_wal_running is True


def test_geo_lag_appears_while_passive_cron_is_paused_then_goes(lab: Lab) -> None:
    lab.pause_cron("geobserver")
    try:
        start = xlogdb_segments(lab, "bserver")[-1]
        for _ in range(3):
            lab.psql("select pg_switch_wal(); create temporary table t as select 1 as x")
            lab.barman("bserver", "switch-wal", "--force", "--archive", SERVER, json=False)
        wait_until(
            "the primary to archive new WAL",
            lambda: xlogdb_segments(lab, "bserver")[-1] > start,
        )
        fleet = collect(lab.config_path)
        geo = server(fleet, "geobserver").geo
        assert geo is not None and geo.error is None
        primary_last = xlogdb_segments(lab, "bserver")[-1]
        passive_last = xlogdb_segments(lab, "geobserver")[-1]
        assert geo.primary_last_wal == primary_last
        assert geo.passive_last_wal == passive_last
        assert geo.wal_lag_segments == int(primary_last, 16) - int(passive_last, 16) > 0
        assert geo.wal_lag_bytes == geo.wal_lag_segments * 16 * 1024 * 1024
    finally:
        lab.resume_cron("geobserver")
    # one cron run syncs the WAL (and any backup) from the primary
    lab.barman("geobserver", "cron", json=False)

    def caught_up() -> str | None:
        primary_last = xlogdb_segments(lab, "bserver")[-1]
        if xlogdb_segments(lab, "geobserver")[-1] != primary_last:
            lab.barman("geobserver", "cron", json=False)
            return None
        return primary_last

    synced_at = wait_until("the passive node to catch up", caught_up, timeout=120, interval=3)
    geo = server(collect(lab.config_path), "geobserver").geo
    primary_after = xlogdb_segments(lab, "bserver")[-1]
    assert geo is not None and geo.passive_last_wal is not None
    # Lag is gone: at most what the (live) primary archived since the passive node caught up.
    assert geo.wal_lag_segments is not None
    assert geo.wal_lag_segments <= int(primary_after, 16) - int(synced_at, 16)
    assert geo.last_sync is not None
    assert time.time() - geo.last_sync.timestamp() < 120


def test_postgresql_stopped_is_reported_not_raised(lab: Lab) -> None:
    lab.pg_stop()
    try:
        fleet = collect(lab.config_path)
        primary = server(fleet, "bserver")  # the node itself is still reachable
        assert primary.postgres is None and primary.postgres_error
        assert primary.archive_queue is not None and primary.archive_queue.pg is None
        assert primary.archive_queue.pg_error
        assert primary.wal_stream is not None and primary.wal_stream.error
        failed = {c.name for c in primary.barman_checks if not c.ok}
        assert "postgresql" in failed  # Barman says so too
        # the backup catalogue is still there: it lives on the Barman node
        assert primary.catalogue is not None and primary.catalogue.last_done is not None
    finally:
        lab.pg_start()
    wait_until(
        "PostgreSQL probes to work again",
        lambda: server(collect(lab.config_path, force_slow=False), "bserver").postgres,
    )
    ensure_streaming(lab)  # pg_receivewal died with PostgreSQL: leave the lab as we found it
