"""Health checks and their thresholds, shared by the dashboard and `--run check`.

Each check has a stable name (part of the headless contract) and returns OK / WARNING /
CRITICAL / UNKNOWN with a one-line detail. UNKNOWN means "we could not find out", never "fine".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from dr_console.config import Config, Thresholds
from dr_console.core import fmt
from dr_console.models import (
    CheckResult,
    FleetSnapshot,
    Health,
    NodeRole,
    NodeSnapshot,
    ServerSnapshot,
)

_Perf = tuple[tuple[str, float, str, float | None, float | None], ...]
_Add = Callable[..., None]

# Stable names of the checks drconsole computes itself (Barman's own appear as "barman.<name>").
NODE_REACHABLE = "node_reachable"
BACKUP_AGE = "backup_age"
WAL_AGE = "wal_age"
ARCHIVER_FAILURES = "archiver_failures"
ARCHIVE_QUEUE = "archive_queue"
RECEIVE_WAL = "receive_wal"
REPLICATION_SLOT = "replication_slot"
STREAM_LAG = "stream_lag"
GEO_BACKUPS = "geo_backups"
GEO_WAL_LAG = "geo_wal_lag"
GEO_LAST_SYNC = "geo_last_sync"
RECOVERY_WINDOW = "recovery_window"


def worst(results: Iterable[CheckResult]) -> Health:
    """The Nagios rule: CRITICAL beats WARNING beats UNKNOWN beats OK.

    UNKNOWN ranks below CRITICAL and WARNING here, as Nagios plugins do for an overall state,
    except when there is nothing but OK and UNKNOWN.
    """
    states = {r.status for r in results}
    for state in (Health.CRITICAL, Health.WARNING, Health.UNKNOWN):
        if state in states:
            return state
    return Health.OK


def _graded(value: float, warning: float, critical: float) -> Health:
    if value >= critical:
        return Health.CRITICAL
    if value >= warning:
        return Health.WARNING
    return Health.OK


def evaluate_fleet(fleet: FleetSnapshot, config: Config) -> list[CheckResult]:
    results: list[CheckResult] = []
    for node in fleet.nodes.values():
        results.extend(evaluate_node(node, fleet, config))
    return results


def evaluate_node(node: NodeSnapshot, fleet: FleetSnapshot, config: Config) -> list[CheckResult]:
    if not node.reachable:
        return [
            CheckResult(
                node.node, None, NODE_REACHABLE, Health.UNKNOWN, node.error or "node unreachable"
            )
        ]
    results = [CheckResult(node.node, None, NODE_REACHABLE, Health.OK, "reachable")]
    for server in node.servers.values():
        results.extend(evaluate_server(server, fleet, config))
    return results


def evaluate_server(
    server: ServerSnapshot, fleet: FleetSnapshot, config: Config
) -> list[CheckResult]:
    node = fleet.nodes.get(server.node)
    if node is not None and not node.reachable:
        # The figures are the last good ones: judging them would call a dead node healthy.
        error = node.error or "node unreachable"
        return [CheckResult(server.node, server.server, NODE_REACHABLE, Health.UNKNOWN, error)]
    limits = config.thresholds_for(server.server)
    now = fleet.taken_at
    results: list[CheckResult] = []

    def add(
        check: str,
        status: Health,
        detail: str,
        perf: tuple[tuple[str, float, str, float | None, float | None], ...] = (),
    ) -> None:
        results.append(CheckResult(server.node, server.server, check, status, detail, perf))

    _barman_checks(server, add)
    _backup_age(server, limits, now, add)
    _wal_age(server, limits, now, add)
    if server.role is NodeRole.PRIMARY:
        _archiver(server, limits, add)
        _streaming(server, limits, add)
    else:
        _geo(server, limits, now, add)
    _window(server, add)
    return results


def _barman_checks(server: ServerSnapshot, add: _Add) -> None:
    if server.barman_checks_error:
        add("barman", Health.UNKNOWN, f"barman check failed to run: {server.barman_checks_error}")
        return
    if not server.barman_checks and server.barman_checks_at is None:
        return  # not collected yet (slow cadence): nothing to say rather than a false OK
    for check in server.barman_checks:
        status = Health.OK if check.ok else Health.CRITICAL
        word = "OK" if check.ok else "FAILED"
        hint = f" ({check.hint})" if check.hint else ""
        add(f"barman.{check.name}", status, f"{word}{hint}")


def _backup_age(server: ServerSnapshot, limits: Thresholds, now: datetime, add: _Add) -> None:
    catalogue = server.catalogue
    if catalogue is None or (catalogue.error and not catalogue.backups):
        reason = catalogue.error if catalogue is not None else "catalogue not collected"
        add(BACKUP_AGE, Health.UNKNOWN, f"backup catalogue unavailable: {reason}")
        return
    last = catalogue.last_done
    if last is None or last.end_time is None:
        add(BACKUP_AGE, Health.CRITICAL, "no completed backup")
        return
    age = fmt.age_seconds(last.end_time, now) or 0.0
    status = _graded(age, limits.backup_max_age, limits.backup_max_age_critical)
    add(
        BACKUP_AGE,
        status,
        f"last backup {last.backup_id} ended {fmt.duration(age)} ago"
        f" (warning {fmt.duration(limits.backup_max_age)},"
        f" critical {fmt.duration(limits.backup_max_age_critical)})",
        (("backup_age", age, "s", limits.backup_max_age, limits.backup_max_age_critical),),
    )


def _wal_age(server: ServerSnapshot, limits: Thresholds, now: datetime, add: _Add) -> None:
    queue = server.archive_queue
    if queue is None or queue.last_archived_time is None:
        reason = (queue.error if queue is not None else None) or "no archived WAL on this node"
        add(WAL_AGE, Health.UNKNOWN if queue is None or queue.error else Health.CRITICAL, reason)
        return
    age = fmt.age_seconds(queue.last_archived_time, now) or 0.0
    add(
        WAL_AGE,
        _graded(age, limits.wal_max_age, limits.wal_max_age_critical),
        f"last WAL {queue.last_archived_wal} archived {fmt.duration(age)} ago",
        (("wal_age", age, "s", limits.wal_max_age, limits.wal_max_age_critical),),
    )


STREAMING_ONLY = ("not used: Barman's archiver is off for this server, WAL arrives by "
                  "streaming only")


def _archiver(server: ServerSnapshot, limits: Thresholds, add: _Add) -> None:
    queue = server.archive_queue
    if queue is not None and queue.archiver_enabled is False:
        # pg_stat_archiver and the .ready files are PostgreSQL's archive_command's, which does
        # not feed this server (archive_mode may be off, or it may archive to another one).
        add(ARCHIVER_FAILURES, Health.OK, STREAMING_ONLY)
        add(ARCHIVE_QUEUE, Health.OK, STREAMING_ONLY)
        return
    pg = queue.pg if queue is not None else None
    if pg is None:
        reason = (queue.pg_error if queue is not None else None) or "no PostgreSQL probe"
        barman_failed = queue.barman_failed_count if queue is not None else None
        if barman_failed:
            add(
                ARCHIVER_FAILURES,
                Health.WARNING,
                f"Barman reports {barman_failed} archiver failures",
            )
        else:
            add(ARCHIVER_FAILURES, Health.UNKNOWN, f"pg_stat_archiver unavailable: {reason}")
        return
    failing_now = pg.last_failed_time is not None and (
        pg.last_archived_time is None or pg.last_failed_time > pg.last_archived_time
    )
    if failing_now:
        add(
            ARCHIVER_FAILURES,
            Health.CRITICAL,
            f"archiving is failing: last failed WAL {pg.last_failed_wal}"
            f" ({pg.failed_count} failures since stats reset)",
        )
    elif pg.failed_count >= limits.archiver_failures:
        add(
            ARCHIVER_FAILURES,
            Health.OK,
            f"{pg.failed_count} past failures, archiving has succeeded since",
        )
    else:
        add(ARCHIVER_FAILURES, Health.OK, f"{pg.archived_count} archived, no failures")
    if pg.ready_count is not None:
        add(
            ARCHIVE_QUEUE,
            _graded(pg.ready_count, limits.ready_wal_count, limits.ready_wal_count_critical),
            f"{pg.ready_count} WAL segments waiting to be archived",
            (
                (
                    "wal_ready",
                    float(pg.ready_count),
                    "",
                    limits.ready_wal_count,
                    limits.ready_wal_count_critical,
                ),
            ),
        )


def _streaming(server: ServerSnapshot, limits: Thresholds, add: _Add) -> None:
    stream = server.wal_stream
    if stream is None or stream.streaming_archiver is False:
        return
    if stream.receive_wal_running is None:
        add(RECEIVE_WAL, Health.UNKNOWN, stream.error or "receive-wal state unknown")
    elif stream.receive_wal_running:
        add(RECEIVE_WAL, Health.OK, f"receive-wal running (pid {stream.receive_wal_pid})")
    else:
        add(RECEIVE_WAL, Health.CRITICAL, "receive-wal is NOT running on the Barman node")
    if stream.slot_name is not None:
        if stream.slot_active is None:
            add(REPLICATION_SLOT, Health.UNKNOWN, f"slot {stream.slot_name}: state unknown")
        elif stream.slot_active:
            add(
                REPLICATION_SLOT,
                Health.OK,
                f"slot {stream.slot_name} active, retaining {fmt.size(stream.slot_retained_bytes)}",
            )
        else:
            add(
                REPLICATION_SLOT,
                Health.CRITICAL,
                f"slot {stream.slot_name} INACTIVE,"
                f" retaining {fmt.size(stream.slot_retained_bytes)}",
            )
    if stream.lag_bytes is None:
        add(STREAM_LAG, Health.UNKNOWN, stream.error or "no receiver in pg_stat_replication")
    else:
        add(
            STREAM_LAG,
            _graded(stream.lag_bytes, limits.stream_lag_bytes, limits.stream_lag_bytes_critical),
            f"stream lag {fmt.size(stream.lag_bytes)}"
            if stream.receiver is not None
            else f"{fmt.size(stream.lag_bytes)} of WAL not received: nothing streams from the "
            f"server, slot {stream.slot_name} holds it",
            (
                (
                    "stream_lag",
                    float(stream.lag_bytes),
                    "B",
                    float(limits.stream_lag_bytes),
                    float(limits.stream_lag_bytes_critical),
                ),
            ),
        )


def _geo(server: ServerSnapshot, limits: Thresholds, now: datetime, add: _Add) -> None:
    geo = server.geo
    if geo is None:
        add(GEO_WAL_LAG, Health.UNKNOWN, "geo-replication state not collected")
        return
    if geo.error:
        add(GEO_WAL_LAG, Health.UNKNOWN, f"geo-replication state unavailable: {geo.error}")
        return
    if geo.missing_backups:
        listed = ", ".join(geo.missing_backups[:3]) + ("…" if len(geo.missing_backups) > 3 else "")
        # A new backup reaches the passive node on its next cron runs: it is late only once it
        # has been missing longer than the geo lag allows.
        waiting = fmt.age_seconds(geo.oldest_missing_end, now)
        if waiting is None:
            status = Health.WARNING
        else:
            status = _graded(waiting, limits.geo_lag_age, limits.geo_lag_age_critical)
        age = f", oldest ended {fmt.duration(waiting)} ago" if waiting is not None else ""
        add(
            GEO_BACKUPS, status, f"{len(geo.missing_backups)} backups not copied yet: {listed}{age}"
        )
    elif geo.syncing_backups:
        add(GEO_BACKUPS, Health.OK, f"copying {', '.join(geo.syncing_backups)}")
    else:
        add(GEO_BACKUPS, Health.OK, "all primary backups present")
    if geo.wal_lag_segments is None:
        add(GEO_WAL_LAG, Health.UNKNOWN, "WAL position on the passive node unknown")
    else:
        add(
            GEO_WAL_LAG,
            _graded(
                geo.wal_lag_segments, limits.geo_lag_segments, limits.geo_lag_segments_critical
            ),
            f"{geo.wal_lag_segments} WAL segments behind ({fmt.size(geo.wal_lag_bytes)},"
            f" {fmt.duration(geo.wal_lag_seconds)})",
            (
                (
                    "geo_lag",
                    float(geo.wal_lag_segments),
                    "",
                    float(limits.geo_lag_segments),
                    float(limits.geo_lag_segments_critical),
                ),
            ),
        )
    since = fmt.age_seconds(geo.last_sync, now)
    if geo.sync_blocked:
        # Stuck for good, however recent the last sync: at least WARNING from the first poll.
        status = Health.CRITICAL if since is None or since >= limits.geo_lag_age_critical else (
            Health.WARNING)
        ago = f"last sync {fmt.duration(since)} ago; " if since is not None else ""
        add(GEO_LAST_SYNC, status, f"{ago}{geo.sync_blocked}")
    elif since is None:
        add(GEO_LAST_SYNC, Health.UNKNOWN, "no successful sync recorded yet")
    else:
        add(
            GEO_LAST_SYNC,
            _graded(since, limits.geo_lag_age, limits.geo_lag_age_critical),
            f"last sync with the primary {fmt.duration(since)} ago",
            (("geo_sync_age", since, "s", limits.geo_lag_age, limits.geo_lag_age_critical),),
        )


def _window(server: ServerSnapshot, add: _Add) -> None:
    window = server.window
    if window is None or window.begin is None or window.end is None:
        return
    add(
        RECOVERY_WINDOW,
        Health.OK,
        f"recoverable {window.begin:%Y-%m-%d %H:%M:%S}Z .. {window.end:%Y-%m-%d %H:%M:%S}Z,"
        f" RPO {fmt.duration(window.rpo_seconds)}",
    )
