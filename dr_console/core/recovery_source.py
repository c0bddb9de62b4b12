"""Where a recovery comes from: the node holding the server, its backups, window and last WAL,
and how a remote destination reaches that node (for barman-wal-restore). Read from a collected
FleetSnapshot; the choice of node and the restore host are pure functions of it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from dr_console.config import Config, NodeConfig
from dr_console.core.barman import BarmanClient
from dr_console.core.barman_versions import Capabilities
from dr_console.core.recovery import (
    RecoveryPlanError,
    RecoveryTarget,
    RestoreHost,
    check_backup_wal,
    choose_backup,
)
from dr_console.core.recovery_checklist import restore_command_host
from dr_console.models import Backup, FleetSnapshot, NodeRole, RecoveryWindow, ServerSnapshot


@dataclass(frozen=True)
class RecoverySource:
    node: NodeConfig
    snapshot: ServerSnapshot

    @property
    def capabilities(self) -> Capabilities | None:
        """The node's Barman, as the collector read it."""
        version = self.snapshot.barman_version
        return Capabilities.from_version_text(version) if version is not None else None

    @property
    def backups(self) -> tuple[Backup, ...]:
        return self.snapshot.catalogue.backups if self.snapshot.catalogue else ()

    @property
    def window(self) -> RecoveryWindow | None:
        return self.snapshot.window

    @property
    def last_wal(self) -> str | None:
        queue = self.snapshot.archive_queue
        if queue is not None and queue.last_archived_wal:
            return queue.last_archived_wal
        return self.snapshot.status.last_archived_wal if self.snapshot.status else None


def pick_source(
    fleet: FleetSnapshot, config: Config, server: str, node: str | None
) -> RecoverySource:
    """The node to recover from: --node, else the primary node holding the server."""
    candidates: list[tuple[NodeConfig, ServerSnapshot]] = []
    unreachable: list[str] = []
    for name, snap in fleet.nodes.items():
        if node is not None and name != node:
            continue
        if not snap.reachable:
            unreachable.append(f"{name} ({snap.error or 'unreachable'})")
            continue
        if server in snap.servers:
            candidates.append((config.node(name), snap.servers[server]))
    if not candidates:
        where = f"node {node}" if node else "any reachable node"
        extra = f"; unreachable: {', '.join(unreachable)}" if unreachable else ""
        raise RecoveryPlanError(f"server {server} was not found on {where}{extra}")
    candidates.sort(key=lambda c: c[0].role is not NodeRole.PRIMARY)
    chosen, snapshot = candidates[0]
    if snapshot.catalogue is not None and snapshot.catalogue.error:
        raise RecoveryPlanError(
            f"cannot list the backups of {server} on {chosen.name}: {snapshot.catalogue.error}"
        )
    return RecoverySource(chosen, snapshot)


def archive_command_host(command: str) -> RestoreHost | None:
    """The Barman host named in PostgreSQL's `barman-wal-archive` archive_command: the host as
    the PostgreSQL server reaches it, which is what a restore_command on a like host needs."""
    words = command.split()
    if not words or not words[0].endswith("barman-wal-archive"):
        return None
    user: str | None = None
    port: int | None = None
    rewritten = ["barman-wal-restore", *words[1:]]
    host = restore_command_host(" ".join(rewritten))
    for flag, value in itertools.pairwise(words):
        if flag in ("-U", "--user"):
            user = value
        elif flag == "--port" and value.isdigit():
            port = int(value)
    return RestoreHost(host=host, user=user, port=port) if host else None


def restore_host_for(source: RecoverySource) -> RestoreHost:
    """How the destination reaches the Barman node: the host in archive_command on the primary
    (FINDINGS P11: never Barman's getfqdn()), else the node's ssh address from the config."""
    status = source.snapshot.status
    command = status.messages.get("archive_command") if status is not None else None
    if source.node.role is NodeRole.PRIMARY and command:
        found = archive_command_host(command)
        if found is not None:
            return found
    ssh = source.node.ssh
    if ssh is None:
        raise RecoveryPlanError(
            f"node {source.node.name} is this host: the console cannot tell how the destination "
            "reaches it; recover locally or configure the node with ssh"
        )
    return RestoreHost(host=ssh.host, user=ssh.user, port=ssh.port)


async def _detailed(client: BarmanClient, server: str, backup: Backup) -> Backup:
    """The backup with its begin/end WAL from show-backup (list-backups does not give them)."""
    if backup.end_wal is not None:
        return backup
    detail = await client.show_backup(server, backup.backup_id)
    return replace(backup, begin_wal=detail.backup.begin_wal, end_wal=detail.backup.end_wal)


async def choose_backup_on_node(
    client: BarmanClient,
    source: RecoverySource,
    server: str,
    target: RecoveryTarget,
    pick: str | None = None,
) -> tuple[Backup, str]:
    """choose_backup with what only show-backup knows: the end WAL of each candidate (for LSN
    targets), and whether the node already holds the WAL that makes the chosen one consistent."""
    backups = list(source.backups)
    if target.kind == "lsn":
        done = [b for b in backups if b.is_done]
        detailed = {b.backup_id: await _detailed(client, server, b) for b in done}
        backups = [detailed.get(b.backup_id, b) for b in backups]
    backup, why = choose_backup(target, backups, pick=pick)
    backup = await _detailed(client, server, backup)
    problem = check_backup_wal(backup, source.last_wal)
    if problem is not None:
        raise RecoveryPlanError(problem)
    return backup, why
