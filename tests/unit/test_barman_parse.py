"""Parsers over real Barman output recorded from the lab (tests/recordings): the steady state of
every tested version (3.4.0 to 3.19.1), and the provoked partial shapes of 3.19.1."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from barman_recordings import DEFAULT_VERSION, VERSIONS, load

from dr_console.core.barman_errors import BarmanOutputError
from dr_console.core.barman_parse import (
    load_json,
    parse_check,
    parse_ctime,
    parse_diagnose,
    parse_list_backups,
    parse_list_processes,
    parse_list_servers,
    parse_messages,
    parse_nagios,
    parse_replication_status,
    parse_show_backup,
    parse_show_servers,
    parse_status,
    parse_sync_info,
)

SERVER = "pgserver"
WAL = re.compile(r"[0-9A-F]{24}")
# Barman's last archived file: a segment, or the backup label right after a backup
ARCHIVED = re.compile(r"[0-9A-F]{24}(\.[0-9A-F]{8}\.backup)?")


def doc(name: str, version: str = DEFAULT_VERSION) -> dict[str, Any]:
    return load_json(load(name, version)["stdout"], name)


def raw(name: str, version: str = DEFAULT_VERSION) -> Any:
    """The recording's JSON read independently of our parser."""
    return json.loads(load(name, version)["stdout"])


@pytest.fixture(params=VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    """Each tested Barman version, for the tests of shapes every version has."""
    return str(request.param)


def test_list_servers_keeps_the_passive_marker(version: str) -> None:
    primary = parse_list_servers(doc("primary-list-servers", version))
    passive = parse_list_servers(doc("passive-list-servers", version))
    assert list(primary) == [SERVER] and list(passive) == [SERVER]
    assert not primary[SERVER].endswith(" (Passive)")
    assert passive[SERVER].endswith(" (Passive)")


def test_show_servers_gives_every_option(version: str) -> None:
    shown = parse_show_servers(doc("primary-show-servers", version))[SERVER]
    assert shown == raw("primary-show-servers", version)[SERVER]
    assert shown["backup_method"] == "rsync"
    assert parse_show_servers(doc("passive-show-servers", version))[SERVER]["primary_ssh_command"]


def test_status_display_strings_become_facts(version: str) -> None:
    status = parse_status(doc("primary-status", version))[SERVER]
    messages = {k: v["message"] for k, v in raw("primary-status", version)[SERVER].items()}
    assert status.messages == messages
    assert (status.active, status.disabled, status.passive_node) == (True, False, False)
    # "00000001000000000000000B, at Mon Nov 30 17:19:51 2026" -> WAL + aware time (node in UTC)
    wal_text, _, when = messages["last_archived_wal"].partition(", at ")
    assert status.last_archived_wal == wal_text and ARCHIVED.fullmatch(wal_text)
    assert status.last_archived_time == datetime.strptime(
        when, "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)
    assert status.failed_count == int(messages["failed_count"])
    assert status.backups_number == int(messages["backups_number"]) >= 1
    rate = messages["server_archived_wals_per_hour"]
    assert status.archived_wals_per_hour == float(rate.removesuffix("/hour"))
    assert status.current_wal == messages["current_xlog"]
    assert status.pg_version is not None and status.pg_version.startswith("15.")
    assert status.last_backup == messages["last_backup"]


def test_archiver_failures_are_counted_when_barman_names_the_last_one(version: str) -> None:
    recording = raw("primary-status-archive-failing", version)
    message = recording[SERVER]["failed_count"]["message"]  # "1 (0000…000A at Wed Dec …)"
    count, _, last = message.partition(" (")
    assert count.isdigit() and int(count) > 0 and last.endswith(")")
    status = parse_status(doc("primary-status-archive-failing", version))[SERVER]
    assert status.failed_count == int(count)


def test_passive_status_has_no_postgres_facts_but_names_its_primary(version: str) -> None:
    status = parse_status(doc("passive-status", version))[SERVER]
    assert status.passive_node is True
    assert status.primary_ssh_command is not None and status.primary_ssh_command.startswith("ssh")
    assert status.current_wal is None and status.last_archived_wal is None
    assert status.failed_count is None and status.pg_version is None


def test_check_results_on_both_nodes(version: str) -> None:
    primary = {c.name: c for c in parse_check(doc("primary-check", version))[SERVER]}
    passive = {c.name: c for c in parse_check(doc("passive-check", version))[SERVER]}
    expected = {k: v["status"] == "OK" for k, v in raw("primary-check", version)[SERVER].items()}
    assert {n: c.ok for n, c in primary.items()} == expected
    assert len(primary) > len(passive)
    assert "receive_wal_running" in primary and "receive_wal_running" not in passive
    assert passive["ssh"].hint == "Barman primary node"
    assert load("primary-check", version)["returncode"] == (0 if all(expected.values()) else 1)


def test_list_backups_done_entries(version: str) -> None:
    backups = parse_list_backups(doc("primary-list-backups", version))[SERVER]
    entries = raw("primary-list-backups", version)[SERVER]
    assert [b.backup_id for b in backups] == [e["backup_id"] for e in entries]
    assert any(b.is_done for b in backups), "the lab always has a backup"
    for b, e in zip(backups, entries, strict=True):
        # list-backups names the backup type from Barman 3.11 on
        assert b.backup_type == e.get("backup_type") and b.status == e["status"]
        assert b.backup_type in (None, "rsync")
        if b.is_done:
            assert b.end_time == datetime.fromtimestamp(int(e["end_time_timestamp"]), UTC)
            assert b.end_time == parse_ctime(e["end_time"])  # display string agrees (UTC node)
            assert b.size_bytes == e["size_bytes"] and b.wal_size_bytes == e["wal_size_bytes"]
        else:  # e.g. FAILED: Barman gives only id, type and status
            assert (b.end_time, b.size_bytes, b.wal_size_bytes) == (None, None, None)
    ids = [b.backup_id for b in backups]
    assert ids == sorted(ids, reverse=True), "newest first"


def test_passive_node_lists_full_backups(version: str) -> None:
    backups = parse_list_backups(doc("passive-list-backups", version))[SERVER]
    entries = raw("passive-list-backups", version)[SERVER]
    assert backups and [b.backup_type for b in backups] == [e.get("backup_type") for e in entries]
    # from 3.11 a copied backup is "full"; before, list-backups gives no type
    assert {b.backup_type for b in backups} <= {"full", None}


def test_a_running_backup_is_empty_with_unknown_sizes() -> None:
    backups = parse_list_backups(doc("primary-list-backups-empty"))[SERVER]
    empty = [b for b in backups if b.status == "EMPTY"]
    assert len(empty) == 1
    running = empty[0]
    assert running.in_progress and not running.is_done
    assert (running.end_time, running.size_bytes, running.wal_size_bytes) == (None, None, None)
    assert backups[0] == running, "the running backup is the newest"
    detail = parse_show_backup(doc("primary-show-backup-empty"), SERVER)
    assert detail.backup.backup_id == running.backup_id and detail.backup.status == "EMPTY"
    assert detail.backup.begin_time is None and detail.begin_lsn is None


def test_a_stopped_backup_is_listed_failed() -> None:
    backups = parse_list_backups(doc("primary-list-backups-failed"))[SERVER]
    assert any(b.status == "FAILED" and not b.in_progress for b in backups)


def test_a_backup_being_copied_to_the_passive_node_is_syncing() -> None:
    backups = parse_list_backups(doc("passive-list-backups-syncing"))[SERVER]
    syncing = [b for b in backups if b.status == "SYNCING"]
    assert len(syncing) == 1 and syncing[0].in_progress and syncing[0].end_time is None
    procs = parse_list_processes(doc("passive-list-processes-syncing"))[SERVER]
    assert "sync-backup" in {p.name for p in procs}


def test_show_backup_latest_matches_the_catalogue(version: str) -> None:
    detail = parse_show_backup(doc("primary-show-backup-latest", version), SERVER)
    body = raw("primary-show-backup-latest", version)[SERVER]
    latest = parse_list_backups(doc("primary-list-backups", version))[SERVER][0]
    assert detail.backup.backup_id == latest.backup_id
    base = body["base_backup_information"]
    assert detail.backup.begin_time == datetime.fromisoformat(base["begin_time"])
    assert detail.backup.end_time is not None
    assert detail.backup.end_time.replace(microsecond=0) == latest.end_time
    assert detail.begin_lsn == base["begin_lsn"] and detail.backup.begin_wal == base["begin_wal"]
    assert detail.next_backup is None, "'- (this is the latest base backup)' means none"
    assert detail.postgresql_version == str(body["postgresql_version"])
    saved = base.get("resources_saved_percentage")  # 3.11+
    assert detail.resources_saved_percentage == (None if saved is None
                                                 else float(saved.rstrip("%")))
    # the base backup's own size: backup_size (3.11+), before it incremental_size
    size = base.get("backup_size_bytes", base.get("incremental_size_bytes"))
    assert detail.backup.deduplicated_size_bytes == size is not None
    assert detail.raw == body


def test_replication_status_shows_the_wal_receiver_and_its_lag(version: str) -> None:
    status = parse_replication_status(doc("primary-replication-status", version))[SERVER]
    body = raw("primary-replication-status", version)[SERVER]
    assert status.server_lsn == body["server_lsn"]
    receiver = next(c for c in status.clients if c.application_name == "barman_receive_wal")
    assert receiver.state == "streaming" and receiver.slot_name
    entry = next(c for c in body["streaming_clients"]
                 if c["application_name"] == "barman_receive_wal")
    # Barman's diff is client - server (negative when behind); lag is the positive distance
    assert receiver.flush_lag_bytes == -entry["flush_lsn_diff_bytes"]
    assert receiver.flush_lag_bytes is not None and receiver.flush_lag_bytes >= 0
    assert receiver.pid == entry["wal_sender_pid"] and receiver.started_at is not None


def test_passive_servers_are_omitted_from_replication_status(version: str) -> None:
    d = doc("passive-replication-status", version)
    if version == "3.4.0":  # Barman 3.4 crashes on a passive server (the client raises it)
        assert "get_replication_stats" in parse_messages(d).exception[0]
        return
    assert parse_replication_status(d) == {}
    assert parse_messages(d).info == (f"Skipping passive server '{SERVER}'",)


def test_list_processes() -> None:
    procs = parse_list_processes(doc("primary-list-processes"))[SERVER]
    assert "receive-wal" in {p.name for p in procs} and all(p.pid > 0 for p in procs)
    during = parse_list_processes(doc("primary-list-processes-backup"))[SERVER]
    assert {"receive-wal", "backup"} <= {p.name for p in during}


def test_sync_info_plain_and_incremental(version: str) -> None:
    info = parse_sync_info(load("primary-sync-info", version)["stdout"], SERVER)
    body = raw("primary-sync-info", version)
    assert info.last_name == body["last_name"] and info.last_position == body["last_position"]
    assert set(info.backup_ids) == set(body["backups"])
    assert all(info.backup_statuses[b] == "DONE" for b in info.backup_ids)
    assert info.wals and all(w.time is not None for w in info.wals)
    # asked from the last known position, only newer WALs come back (often none)
    current = parse_sync_info(load("primary-sync-info-current", version)["stdout"], SERVER)
    assert len(current.wals) < len(info.wals)
    assert all(w.name > (info.last_name or "") for w in current.wals)
    done = {b for b in info.backup_ids if info.backup_statuses[b] == "DONE"}
    assert set(current.backup_ids) >= done


def test_sync_info_under_json_format_is_refused_clearly(version: str) -> None:
    with pytest.raises(BarmanOutputError, match="sync-info did not print valid JSON"):
        parse_sync_info(load("primary-sync-info-json", version)["stdout"], SERVER)


def test_diagnose_plain(version: str) -> None:
    d = parse_diagnose(load("primary-diagnose", version)["stdout"])
    assert SERVER in d["servers"] and d["global"]["system_info"]["barman_ver"] == version


@pytest.mark.parametrize("node", ["primary", "passive"])
def test_nagios_line_plain_and_under_json(node: str, version: str) -> None:
    recording = load(f"{node}-check-nagios", version)
    plain = parse_nagios(recording["stdout"])
    assert plain.status in {"OK", "WARNING", "CRITICAL"} and SERVER in plain.text
    assert recording["returncode"] == {"OK": 0, "WARNING": 1, "CRITICAL": 2}[plain.status]
    assert SERVER in plain.perfdata
    assert len(plain.details) == recording["stdout"].strip().count("\n")
    quirk = load(f"{node}-check-nagios-json", version)["stdout"]
    assert quirk.startswith("{}")
    assert parse_nagios(quirk) == plain


def test_info_only_commands_are_message_lists(version: str) -> None:
    d = raw("primary-switch-wal-json", version)
    recorded = load("primary-switch-wal-json", version)["stdout"]
    msgs = parse_messages(load_json(recorded, "switch-wal"))
    assert msgs.info == tuple(d["_INFO"]) and msgs.error == ()
    assert any("has been closed" in line for line in msgs.info)


def test_garbage_is_a_clear_output_error() -> None:
    with pytest.raises(BarmanOutputError, match="printed nothing"):
        load_json("", "status")
    with pytest.raises(BarmanOutputError, match="expected a JSON object, got list"):
        load_json("[]", "status")
    with pytest.raises(BarmanOutputError, match=r"pgserver\.active: expected an object"):
        parse_status({SERVER: {"active": "True"}})
    with pytest.raises(BarmanOutputError, match=r"unknown status 'MAYBE'"):
        parse_check({SERVER: {"ssh": {"status": "MAYBE", "hint": ""}}})
