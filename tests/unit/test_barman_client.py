"""BarmanClient against real recorded Barman runs: what it asks Barman, and the typed errors a
user sees when Barman refuses or crashes."""

from __future__ import annotations

import pytest
from barman_recordings import RECORDINGS, ReplayTransport, load, result

from dr_console.core.barman import (
    BarmanClient,
    BarmanCrashed,
    BarmanError,
    BarmanLocked,
    BarmanOutputError,
    UnknownBackup,
    UnknownServer,
    json_result,
    plain_result,
)
from dr_console.core.validation import UnsafeValue

SERVER = "pgserver"


def client_for(*recordings: str) -> tuple[BarmanClient, ReplayTransport]:
    transport = ReplayTransport(*recordings)
    return BarmanClient(transport, timeout=10), transport


async def test_one_barman_process_serves_all_servers() -> None:
    client, transport = client_for(
        "primary-status", "primary-check", "primary-list-backups", "primary-replication-status")
    status = await client.status()
    checks = await client.check()
    backups = await client.list_backups()
    replication = await client.replication_status()
    assert set(status) == set(checks) == set(backups) == set(replication) == {SERVER}
    assert [c[-1] for c in transport.calls] == ["all"] * 4
    assert all(c[:3] == ("barman", "-f", "json") for c in transport.calls)


async def test_failed_checks_are_data_not_errors() -> None:
    client, _ = client_for("primary-check-during-backup")
    checks = await client.check([SERVER])
    assert checks[SERVER], "barman check exits 1 on a failed check; the results still arrive"


async def test_list_processes_runs_one_barman_per_server() -> None:
    client, transport = client_for("primary-list-servers", "primary-list-processes")
    procs = await client.list_processes()
    assert "receive-wal" in {p.name for p in procs[SERVER]}
    assert [c[3:] for c in transport.calls] == [("list-servers",), ("list-processes", SERVER)]


async def test_version_sync_info_and_diagnose_run_without_json_format() -> None:
    client, transport = client_for(
        "primary-version", "primary-sync-info", "primary-diagnose")
    assert await client.version() == load("primary-version")["stdout"].split()[0]
    info = await client.sync_info(SERVER)
    diag = await client.diagnose()
    assert info.backup_ids and SERVER in diag["servers"]
    assert all("-f" not in call for call in transport.calls)


async def test_sync_info_from_a_known_position() -> None:
    first = ReplayTransport("primary-sync-info-current")
    argv = load("primary-sync-info-current")["argv"]
    wal, position = argv[-2], int(argv[-1])
    info = await BarmanClient(first).sync_info(SERVER, wal, position)
    assert all(w.name > wal for w in info.wals)
    with pytest.raises(UnsafeValue, match="both last_wal and last_position"):
        await BarmanClient(first).sync_info(SERVER, wal)
    with pytest.raises(UnsafeValue, match="not a WAL file name"):
        await BarmanClient(first).sync_info(SERVER, "../x", 3)


@pytest.mark.parametrize("node", ["primary", "passive"])
async def test_unknown_server_carries_barmans_message(node: str) -> None:
    client, _ = client_for(f"{node}-status-unknown-server")
    with pytest.raises(UnknownServer) as info:
        await client.status(["nosuch"])
    assert info.value.message == "Unknown server 'nosuch'"
    assert info.value.returncode == 1 and info.value.kind == "unknown-server"
    assert info.value.argv == tuple(load(f"{node}-status-unknown-server")["argv"])


async def test_one_unknown_server_among_known_ones_is_reported() -> None:
    client, _ = client_for("primary-status-known-and-unknown")
    with pytest.raises(UnknownServer, match="nosuch"):
        await client.status([SERVER, "nosuch"])


async def test_unknown_backup() -> None:
    client, _ = client_for("primary-show-backup-unknown")
    with pytest.raises(UnknownBackup, match="20000101T000000"):
        await client.show_backup(SERVER, "20000101T000000")


def test_a_second_backup_is_refused_as_locked() -> None:
    with pytest.raises(BarmanLocked, match="Another backup process is running") as info:
        json_result(result("primary-backup-concurrent-refused"), "backup")
    assert info.value.returncode == 1


def test_switch_wal_on_the_passive_node_is_a_crash_in_both_formats() -> None:
    with pytest.raises(BarmanCrashed, match="'NoneType' object has no attribute"):
        plain_result(result("passive-switch-wal"), "switch-wal")
    with pytest.raises(BarmanCrashed, match="'NoneType' object has no attribute") as info:
        json_result(result("passive-switch-wal-json"), "switch-wal")
    assert info.value.kind == "crashed"


def test_operations_that_succeed_pass_through() -> None:
    for name in ("primary-cron", "primary-switch-wal", "passive-cron"):
        assert plain_result(result(name), name).returncode == 0
    assert json_result(result("primary-switch-wal-json"), "switch-wal")["_INFO"]


def test_argparse_usage_errors_are_reported_with_barmans_line() -> None:
    with pytest.raises(BarmanError) as info:
        json_result(result("primary-usage-error"), "receive-wal")
    assert info.value.kind == "usage" and info.value.returncode == 2
    assert info.value.message == "barman: error: unrecognized arguments: --status"


def test_unparsable_output_is_an_output_error_with_the_argv() -> None:
    argv = tuple(load("primary-sync-info-json")["argv"])
    with pytest.raises(BarmanOutputError, match="did not print valid JSON") as info:
        json_result(result("primary-sync-info-json"), "sync-info")
    assert info.value.argv == argv


async def test_server_lists_are_validated_before_anything_runs() -> None:
    client, transport = client_for("primary-status")
    with pytest.raises(UnsafeValue, match="letters, digits"):
        await client.status(["pg;id"])
    with pytest.raises(UnsafeValue, match="not one string"):
        await client.status("pgserver")
    with pytest.raises(UnsafeValue, match="no server names"):
        await client.status([])
    assert transport.calls == []


@pytest.mark.parametrize("node", ["primary", "passive"])
async def test_nagios_status_is_data_whatever_barmans_exit_code(node: str) -> None:
    client, _ = client_for(f"{node}-check-nagios")
    nagios = await client.check_nagios()
    rc = load(f"{node}-check-nagios")["returncode"]
    assert {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}[nagios.status] == rc
    assert (nagios.details != ()) == (nagios.status != "OK")


def test_delete_refused_while_barman_is_busy_is_locked() -> None:
    # Recorded only when the shared lab was busy during the recording run.
    if not (RECORDINGS / "primary-delete-locked.json").exists():
        pytest.skip("the last recording run did not meet a busy server")
    with pytest.raises(BarmanLocked, match=r"Another process in running"):  # sic, Barman's words
        plain_result(result("primary-delete-locked"), "delete")
