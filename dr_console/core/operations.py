"""Operations the console offers (backup, switch-wal, cron, keep, release, delete): pure planning.

`plan()` turns "this operation on this server of this node" into the exact Barman argv, what the
confirmation says, and whether the operator must type a word to confirm it; or refuses with a
message for the user (an operation that would run on the wrong node, or on the wrong backup).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from dr_console.core.barman import BarmanClient
from dr_console.models import Backup, NodeRole


class OpKind(enum.StrEnum):
    BACKUP = "backup"
    SWITCH_WAL = "switch-wal"
    CRON = "cron"
    KEEP = "keep"
    RELEASE = "release"
    DELETE = "delete"


PRIMARY_ONLY = frozenset({OpKind.BACKUP, OpKind.SWITCH_WAL})
NEEDS_BACKUP = frozenset({OpKind.KEEP, OpKind.RELEASE, OpKind.DELETE})
_RUNNING_STATUSES = frozenset({"EMPTY", "STARTED", "SYNCING", "WAITING_FOR_WALS"})


class OperationRefused(Exception):
    """The operation does not apply here; the message says why and what to do instead."""


@dataclass(frozen=True)
class Operation:
    kind: OpKind
    node: str
    server: str | None  # None: a node-wide operation (cron)
    argv: tuple[str, ...]
    title: str  # "backup pgserver on bserver"
    explain: str  # one sentence: what it will do
    backup_id: str | None = None
    confirm_word: str | None = None  # destructive: the operator must type exactly this

    @property
    def job_operation(self) -> str:
        """The operation name recorded with the job (a simple word, as JobManager wants)."""
        return "keep" if self.kind is OpKind.RELEASE else self.kind.value

    @property
    def destructive(self) -> bool:
        return self.confirm_word is not None


def is_kept(backup: Backup) -> bool:
    return (backup.retention_status or "").upper().startswith("KEEP")


def plan(
    kind: OpKind,
    client: BarmanClient,
    *,
    node: str,
    server: str,
    role: NodeRole,
    primary: str | None = None,
    backup: Backup | None = None,
) -> Operation:
    """The operation `kind` for `server` as seen on `node` (its role there), or OperationRefused.

    `primary` names the primary node of a passive one, for the refusal message.
    """
    if kind in PRIMARY_ONLY and role is not NodeRole.PRIMARY:
        where = f" (run it on the primary node {primary})" if primary else ""
        raise OperationRefused(
            f"{kind.value} is refused on {node}: {server} is a passive copy there and Barman "
            f"only runs {kind.value} on the primary node{where}."
        )
    if kind in NEEDS_BACKUP:
        if backup is None:
            raise OperationRefused(f"{kind.value}: select a backup in the catalogue first.")
        _check_backup(kind, backup)
    if kind is OpKind.BACKUP:
        argv = client.backup_argv(server)
        return Operation(
            kind,
            node,
            server,
            tuple(argv),
            f"backup {server} on {node}",
            f"Start a base backup of {server}; it runs on {node} even if the console goes away.",
        )
    if kind is OpKind.SWITCH_WAL:
        argv = client.switch_wal_argv(server, force=True, archive=True)
        return Operation(
            kind,
            node,
            server,
            tuple(argv),
            f"switch-wal {server} on {node}",
            f"Close the current WAL file of {server} and wait until {node} has archived it.",
        )
    if kind is OpKind.CRON:
        return Operation(
            kind,
            node,
            None,
            tuple(client.cron_argv()),
            f"barman cron on {node}",
            f"Run Barman's maintenance on {node} for every server (archiving, receive-wal, "
            "retention, geo copies).",
        )
    assert backup is not None
    bid = backup.backup_id
    if kind is OpKind.KEEP:
        argv = client.keep_argv(server, bid, target="full")
        return Operation(
            kind,
            node,
            server,
            tuple(argv),
            f"keep backup {bid} of {server} on {node}",
            "Keep this backup (target full) so that the retention policy never removes it.",
            backup_id=bid,
        )
    if kind is OpKind.RELEASE:
        argv = client.keep_argv(server, bid, release=True)
        return Operation(
            kind,
            node,
            server,
            tuple(argv),
            f"release backup {bid} of {server} on {node}",
            "Release the keep annotation: the retention policy applies to this backup again.",
            backup_id=bid,
        )
    argv = client.delete_argv(server, bid)
    return Operation(
        kind,
        node,
        server,
        tuple(argv),
        f"DELETE backup {bid} of {server} on {node}",
        f"Delete backup {bid} ({backup.status}) from the catalogue of {node}, with its files. "
        "This cannot be undone.",
        backup_id=bid,
        confirm_word=bid,
    )


def _check_backup(kind: OpKind, backup: Backup) -> None:
    bid = backup.backup_id
    if backup.status in _RUNNING_STATUSES:
        raise OperationRefused(
            f"{kind.value}: backup {bid} is {backup.status} (still being written); "
            "wait for it to end, or cancel its job from the jobs screen (j)."
        )
    if kind is OpKind.KEEP:
        if not backup.is_done:
            raise OperationRefused(f"keep: backup {bid} is {backup.status}; only DONE can be kept.")
        if is_kept(backup):
            raise OperationRefused(
                f"keep: backup {bid} is already kept ({backup.retention_status})."
            )
    if kind is OpKind.RELEASE and not is_kept(backup):
        raise OperationRefused(f"release: backup {bid} has no keep annotation to release.")
    if kind is OpKind.DELETE and is_kept(backup):
        raise OperationRefused(
            f"delete: backup {bid} is kept ({backup.retention_status}); release it first (u)."
        )
