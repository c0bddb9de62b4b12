"""Plain data that flows from the core to the UI and to headless output.

Everything here is a frozen dataclass with no behaviour beyond small derived properties, so a
snapshot can be handed across tasks, compared in tests and serialised to JSON without surprises.
Times are timezone-aware UTC datetimes; sizes are bytes; "None" means "not known", never zero.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Health(enum.IntEnum):
    """Nagios-ordered health: a higher value is worse, except UNKNOWN which sorts last."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @property
    def label(self) -> str:
        return self.name


class NodeRole(enum.StrEnum):
    PRIMARY = "primary"
    PASSIVE = "passive"


# --- Barman facts, as parsed from Barman's own output -------------------------------------------


@dataclass(frozen=True)
class Backup:
    """One entry of `barman list-backups` (plus what show-backup adds when known)."""

    backup_id: str
    status: str  # DONE, EMPTY (running or waiting), STARTED, SYNCING, FAILED, WAITING_FOR_WALS…
    backup_type: str | None = None  # rsync, full, incremental, snapshot… (passive node: "full")
    backup_name: str | None = None
    begin_time: datetime | None = None
    end_time: datetime | None = None
    size_bytes: int | None = None
    wal_size_bytes: int | None = None
    deduplicated_size_bytes: int | None = None
    retention_status: str | None = None
    begin_wal: str | None = None
    end_wal: str | None = None
    timeline: int | None = None

    @property
    def is_done(self) -> bool:
        return self.status == "DONE"

    @property
    def in_progress(self) -> bool:
        return self.status in {"EMPTY", "STARTED", "SYNCING", "WAITING_FOR_WALS"}


@dataclass(frozen=True)
class BackupDetail:
    """`barman show-backup`: the whole document, kept as parsed JSON plus the key fields."""

    server: str
    backup: Backup
    begin_lsn: str | None = None
    end_lsn: str | None = None
    pgdata_directory: str | None = None
    postgresql_version: str | None = None
    system_id: str | None = None
    cluster_size_bytes: int | None = None
    wal_files: int | None = None
    wal_last_available: str | None = None
    previous_backup: str | None = None
    next_backup: str | None = None
    copy_time_seconds: float | None = None
    resources_saved_percentage: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class BarmanCheck:
    """One named result of `barman check`."""

    name: str
    ok: bool
    hint: str = ""


@dataclass(frozen=True)
class BarmanStatus:
    """`barman status` for one server. Barman gives display strings; the useful ones are parsed."""

    server: str
    messages: dict[str, str]  # key -> Barman's display message, verbatim
    active: bool | None = None
    disabled: bool | None = None
    passive_node: bool | None = None
    pg_version: str | None = None
    current_wal: str | None = None
    last_archived_wal: str | None = None
    last_archived_time: datetime | None = None
    failed_count: int | None = None
    backups_number: int | None = None
    first_backup: str | None = None
    last_backup: str | None = None
    archived_wals_per_hour: float | None = None
    primary_ssh_command: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class ReplicationClient:
    """One row of `barman replication-status` or of pg_stat_replication."""

    application_name: str
    state: str | None = None
    sync_state: str | None = None
    sent_lsn: str | None = None
    write_lsn: str | None = None
    flush_lsn: str | None = None
    replay_lsn: str | None = None
    sent_lag_bytes: int | None = None
    write_lag_bytes: int | None = None
    flush_lag_bytes: int | None = None
    replay_lag_bytes: int | None = None
    write_lag_seconds: float | None = None
    flush_lag_seconds: float | None = None
    replay_lag_seconds: float | None = None
    slot_name: str | None = None
    client_addr: str | None = None
    pid: int | None = None
    started_at: datetime | None = None


@dataclass(frozen=True)
class BarmanProcess:
    """`barman list-processes`: receive-wal, backup, sync-backup, sync-wal…"""

    name: str
    pid: int


@dataclass(frozen=True)
class SyncWal:
    name: str
    size_bytes: int | None
    time: datetime | None


@dataclass(frozen=True)
class SyncInfo:
    """`barman sync-info` on a primary node, as a passive node sees it."""

    server: str
    last_name: str | None
    last_position: int | None
    backup_ids: tuple[str, ...]
    backup_statuses: dict[str, str]
    wals: tuple[SyncWal, ...]


# --- PostgreSQL facts -------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiverStats:
    """pg_stat_archiver plus the archive_status directory."""

    archived_count: int
    failed_count: int
    last_archived_wal: str | None
    last_archived_time: datetime | None
    last_failed_wal: str | None
    last_failed_time: datetime | None
    stats_reset: datetime | None
    ready_count: int | None  # .ready files waiting (None: not readable by this role)
    oldest_ready: str | None = None


@dataclass(frozen=True)
class ReplicationSlot:
    slot_name: str
    slot_type: str
    active: bool
    active_pid: int | None
    restart_lsn: str | None
    retained_bytes: int | None
    wal_status: str | None


@dataclass(frozen=True)
class PostgresFacts:
    """Everything one probe round reads from a PostgreSQL server."""

    in_recovery: bool
    server_version: str
    current_lsn: str | None
    current_wal_file: str | None
    archiver: ArchiverStats | None
    replication: tuple[ReplicationClient, ...]
    slots: tuple[ReplicationSlot, ...]
    taken_at: datetime
    server_version_num: int | None = None  # e.g. 150018; server_version is the display string


# --- Snapshots: what the panes and checks read ---------------------------------------------------


@dataclass(frozen=True)
class WalStream:
    """The WAL stream pane: pg_receivewal on the Barman node and its slot on PostgreSQL."""

    taken_at: datetime
    error: str | None = None
    streaming_archiver: bool | None = None  # is streaming configured for this server at all
    receive_wal_running: bool | None = None
    receive_wal_pid: int | None = None
    slot_name: str | None = None
    slot_active: bool | None = None
    slot_restart_lsn: str | None = None
    slot_retained_bytes: int | None = None
    slot_wal_status: str | None = None
    receiver: ReplicationClient | None = None  # Barman's receiver in pg_stat_replication
    server_lsn: str | None = None
    lag_bytes: int | None = None  # server LSN - receiver's flushed/written LSN
    lag_seconds: float | None = None


@dataclass(frozen=True)
class ArchiveQueue:
    """The archive queue pane: PostgreSQL's archiver and what waits on the Barman node."""

    taken_at: datetime
    error: str | None = None
    archiver_enabled: bool | None = None
    pg: ArchiverStats | None = None  # None when there is no conninfo or PostgreSQL is down
    pg_error: str | None = None
    barman_failed_count: int | None = None
    last_archived_wal: str | None = None  # on the Barman node (xlog.db / status)
    last_archived_time: datetime | None = None
    incoming_count: int | None = None  # files waiting in Barman's incoming/
    streaming_count: int | None = None  # files waiting in Barman's streaming/ (excl. .partial)
    errors_count: int | None = None  # files in Barman's errors/
    archived_wals_per_hour: float | None = None


@dataclass(frozen=True)
class BackupCatalogue:
    taken_at: datetime
    error: str | None = None
    backups: tuple[Backup, ...] = ()  # newest first, as Barman lists them

    @property
    def done(self) -> tuple[Backup, ...]:
        return tuple(b for b in self.backups if b.is_done)

    @property
    def last_done(self) -> Backup | None:
        done = self.done
        return done[0] if done else None


@dataclass(frozen=True)
class GeoReplica:
    """A passive node's copy of one server, compared with its primary node."""

    taken_at: datetime
    passive_node: str
    primary_node: str | None
    error: str | None = None
    missing_backups: tuple[str, ...] = ()  # DONE on the primary, absent on the passive node
    oldest_missing_end: datetime | None = None  # end time (on the primary) of the oldest missing
    syncing_backups: tuple[str, ...] = ()
    extra_backups: tuple[str, ...] = ()  # on the passive node only (e.g. deleted on primary)
    primary_last_wal: str | None = None
    passive_last_wal: str | None = None
    wal_lag_segments: int | None = None
    wal_lag_bytes: int | None = None
    wal_lag_seconds: float | None = None
    last_sync: datetime | None = None
    sync_processes: tuple[BarmanProcess, ...] = ()
    sync_blocked: str | None = None  # why Barman's WAL sync cannot proceed, when known


@dataclass(frozen=True)
class RecoveryWindow:
    """What can be recovered from one node: oldest usable backup's begin to the newest WAL."""

    begin: datetime | None
    end: datetime | None
    oldest_backup_id: str | None
    latest_backup_id: str | None
    rpo_seconds: float | None  # now - time of the last WAL safely on the node


@dataclass(frozen=True)
class CheckResult:
    """One health check, shared by the dashboard and `--run check`."""

    node: str
    server: str | None
    check: str
    status: Health
    detail: str
    perfdata: tuple[tuple[str, float, str, float | None, float | None], ...] = ()


@dataclass(frozen=True)
class ServerSnapshot:
    """Everything drconsole knows about one Barman server on one node."""

    node: str
    server: str
    role: NodeRole
    site: str | None
    taken_at: datetime
    status: BarmanStatus | None = None
    status_error: str | None = None
    wal_stream: WalStream | None = None
    archive_queue: ArchiveQueue | None = None
    catalogue: BackupCatalogue | None = None
    geo: GeoReplica | None = None
    window: RecoveryWindow | None = None
    barman_checks: tuple[BarmanCheck, ...] = ()
    barman_checks_at: datetime | None = None
    barman_checks_error: str | None = None
    processes: tuple[BarmanProcess, ...] = ()
    postgres: PostgresFacts | None = None
    postgres_error: str | None = None
    barman_version: str | None = None  # the node's Barman, as read once per connection


@dataclass(frozen=True)
class NodeSnapshot:
    node: str
    role: NodeRole
    site: str | None
    taken_at: datetime
    reachable: bool
    error: str | None = None
    servers: dict[str, ServerSnapshot] = field(default_factory=dict)
    barman_version: str | None = None


@dataclass(frozen=True)
class FleetSnapshot:
    taken_at: datetime
    nodes: dict[str, NodeSnapshot] = field(default_factory=dict)

    def servers(self) -> list[ServerSnapshot]:
        return [s for n in self.nodes.values() for s in n.servers.values()]


# --- Jobs: operations running detached on a Barman node ----------------------------------------


class JobState(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # exit status 0
    FAILED = "failed"  # non-zero exit status
    CANCELLED = "cancelled"  # cancel was asked; exit status as recorded
    LOST = "lost"  # no exit status and the process is gone (SIGKILL, node reboot)


@dataclass(frozen=True)
class Job:
    """One detached job as found on its node (<job_dir>/<job_id>/ holds argv, pid, output.log…)."""

    job_id: str
    node: str
    server: str | None
    operation: str  # backup, switch-wal, recover, cron, keep, delete…
    argv: tuple[str, ...]
    job_path: str  # absolute directory of this job on the node
    pid: int | None
    state: JobState
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_status: int | None = None
    user: str | None = None  # who started it (OS user on the console's host)
    ssh_client: str | None = None  # $SSH_CLIENT of that console, if any
    phase: str | None = None  # from the log, when it was tailed (see core/job_progress.py)

    @property
    def log_path(self) -> str:
        return f"{self.job_path}/output.log"

    @property
    def running(self) -> bool:
        return self.state is JobState.RUNNING

    def elapsed(self, now: datetime) -> float | None:
        if self.started_at is None:
            return None
        end = self.ended_at if self.ended_at is not None else now
        return max(0.0, (end - self.started_at).total_seconds())
