"""Planning operations: the exact argv, the node they run on, typed confirmation, refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dr_console.core.barman import BarmanClient
from dr_console.core.operations import Operation, OperationRefused, OpKind, plan
from dr_console.core.transport_local import LocalTransport
from dr_console.core.validation import UnsafeValue
from dr_console.models import (
    ArchiveQueue,
    Backup,
    FleetSnapshot,
    Job,
    JobState,
    NodeRole,
    NodeSnapshot,
    ServerSnapshot,
)
from dr_console.tui.jobs_board import JobsBoard

CLIENT = BarmanClient(LocalTransport("bserver"), barman="barman", config_file="/etc/b.conf")
DONE = Backup("20261130T171940", "DONE", retention_status="VALID")
KEPT = Backup("20261130T170102", "DONE", retention_status="KEEP:FULL")
RUNNING = Backup("20261130T172800", "EMPTY")
T = datetime(2026, 11, 30, 17, 30, tzinfo=UTC)


def _plan(
    kind: OpKind, role: NodeRole = NodeRole.PRIMARY, backup: Backup | None = None
) -> Operation:
    return plan(
        kind, CLIENT, node="bserver", server="pgserver", role=role, primary="bserver", backup=backup
    )


@pytest.mark.parametrize(
    ("kind", "backup", "tail"),
    [
        (OpKind.BACKUP, None, ("backup", "pgserver")),
        (OpKind.SWITCH_WAL, None, ("switch-wal", "--force", "--archive", "pgserver")),
        (OpKind.CRON, None, ("cron",)),
        (OpKind.KEEP, DONE, ("keep", "--target", "full", "pgserver", DONE.backup_id)),
        (OpKind.RELEASE, KEPT, ("keep", "--release", "pgserver", KEPT.backup_id)),
        (OpKind.DELETE, DONE, ("delete", "pgserver", DONE.backup_id)),
    ],
)
def test_argv_is_barman_with_its_config_and_the_operation(
    kind: OpKind, backup: Backup | None, tail: tuple[str, ...]
) -> None:
    op = _plan(kind, backup=backup)
    assert op.argv == ("barman", "-c", "/etc/b.conf", *tail)
    assert op.node == "bserver"
    assert op.destructive is (kind is OpKind.DELETE)


def test_only_delete_needs_the_backup_id_typed() -> None:
    assert _plan(OpKind.DELETE, backup=DONE).confirm_word == DONE.backup_id
    assert _plan(OpKind.KEEP, backup=DONE).confirm_word is None
    assert _plan(OpKind.RELEASE, backup=KEPT).job_operation == "keep"


@pytest.mark.parametrize("kind", [OpKind.BACKUP, OpKind.SWITCH_WAL])
def test_backup_and_switch_wal_are_refused_on_a_passive_node(kind: OpKind) -> None:
    with pytest.raises(OperationRefused, match=f"{kind.value} is refused on bserver.*bserver"):
        _plan(kind, role=NodeRole.PASSIVE)


def test_cron_and_catalogue_operations_run_on_a_passive_node() -> None:
    assert _plan(OpKind.CRON, role=NodeRole.PASSIVE).argv[-1] == "cron"
    assert _plan(OpKind.DELETE, role=NodeRole.PASSIVE, backup=DONE).node == "bserver"


@pytest.mark.parametrize(
    ("kind", "backup", "why"),
    [
        (OpKind.KEEP, None, "select a backup"),
        (OpKind.DELETE, RUNNING, "still being written"),
        (OpKind.KEEP, KEPT, "already kept"),
        (OpKind.KEEP, Backup("20261130T100000", "FAILED"), "only DONE"),
        (OpKind.RELEASE, DONE, "no keep annotation"),
        (OpKind.DELETE, KEPT, "release it first"),
    ],
)
def test_catalogue_operations_refuse_the_wrong_backup(
    kind: OpKind, backup: Backup | None, why: str
) -> None:
    with pytest.raises(OperationRefused, match=why):
        _plan(kind, backup=backup)


def test_a_backup_id_that_is_not_one_never_reaches_barman() -> None:
    with pytest.raises(UnsafeValue):
        _plan(OpKind.DELETE, backup=Backup("x; rm -rf /", "DONE"))


def _job(job_id: str, state: JobState, operation: str = "switch-wal") -> Job:
    return Job(job_id, "bserver", "pgserver", operation, ("barman",), "/j", 1, state)


def _fleet(last: str) -> FleetSnapshot:
    queue = ArchiveQueue(T, last_archived_wal=last, last_archived_time=T)
    snap = ServerSnapshot("bserver", "pgserver", NodeRole.PRIMARY, "X", T, archive_queue=queue)
    node = NodeSnapshot("bserver", NodeRole.PRIMARY, "X", T, True, servers={"pgserver": snap})
    return FleetSnapshot(T, {"bserver": node})


def test_a_closed_wal_arrives_once_the_node_has_archived_it() -> None:
    board = JobsBoard()
    job = _job("20261130T172500Z-3d4e5f", JobState.SUCCEEDED)
    board.put(job)
    board.expect_arrival(job, "00000001000000000000000C")
    assert board.check_arrivals(_fleet("00000001000000000000000B")) == []
    [(seen, arrival)] = board.check_arrivals(_fleet("00000001000000000000000C"))
    assert seen == job and arrival.confirmed and arrival.arrived_at == T
    assert board.check_arrivals(_fleet("00000001000000000000000D")) == []  # said once


def test_listing_a_node_returns_running_jobs_not_yet_followed_and_orders_running_first() -> None:
    board = JobsBoard()
    old = _job("20261130T170000Z-000001", JobState.SUCCEEDED, "backup")
    new = _job("20261130T172000Z-000002", JobState.RUNNING, "backup")
    assert board.update_node("bserver", [old, new], T) == [new]
    board.watched.add(("bserver", new.job_id))
    assert board.update_node("bserver", [old, new], T) == []
    assert board.ordered() == [new, old]
    board.fail_node("bserver", "connection refused")
    assert board.node_errors == {"bserver": "connection refused"}
