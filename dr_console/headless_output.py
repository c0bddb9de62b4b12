"""The output contract of `--run check` and `--run status`: JSON, Nagios and text renderings.

The JSON shapes are documented in the README and only ever extended, never renamed.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from dr_console.core import fmt
from dr_console.models import (
    CheckResult,
    FleetSnapshot,
    Health,
    ServerSnapshot,
)

SCHEMA_VERSION = 1


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _check_dict(result: CheckResult) -> dict[str, Any]:
    return {
        "node": result.node,
        "server": result.server,
        "check": result.check,
        "status": result.status.label,
        "detail": result.detail,
    }


def check_json(fleet: FleetSnapshot, results: list[CheckResult], overall: Health) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "status": overall.label,
        "generated_at": _iso(fleet.taken_at),
        "checks": [_check_dict(r) for r in results],
        "summary": {state.label: sum(1 for r in results if r.status is state) for state in Health},
    }


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3f}".rstrip("0")


def _perf_value(value: float, uom: str) -> str:
    if uom in ("s", "B", ""):
        return f"{value:.0f}{uom}"
    return f"{_number(value)}{uom}"


def check_nagios(results: list[CheckResult], overall: Health) -> str:
    """`DRCONSOLE STATE - summary | perfdata` then one line per failing check (long output)."""
    failing = [r for r in results if r.status is not Health.OK]
    failing.sort(key=lambda r: (-_rank(r.status), r.node, r.server or "", r.check))
    counts = {
        state: sum(1 for r in results if r.status is state)
        for state in (Health.CRITICAL, Health.WARNING, Health.UNKNOWN)
    }
    if failing:
        first = failing[0]
        where = f"{first.node}/{first.server}" if first.server else first.node
        parts = [f"{n} {s.label.lower()}" for s, n in counts.items() if n]
        summary = f"{', '.join(parts)}; {where} {first.check}: {first.detail}"
    else:
        servers = {(r.node, r.server) for r in results if r.server}
        summary = f"{len(results)} checks OK on {len(servers)} server(s)"
    perf = []
    for r in results:
        for label, value, uom, warn, crit in r.perfdata:
            name = f"{r.node}.{r.server}.{label}" if r.server else f"{r.node}.{label}"
            thresholds = ";".join("" if t is None else _number(t) for t in (warn, crit))
            perf.append(f"{name}={_perf_value(value, uom)};{thresholds}")
    line = f"DRCONSOLE {overall.label} - {summary}"
    if perf:
        line += " | " + " ".join(perf)
    lines = [line]
    for r in failing:
        where = f"{r.node}/{r.server}" if r.server else r.node
        lines.append(f"{r.status.label}: {where} {r.check}: {r.detail}")
    return "\n".join(lines)


def _rank(status: Health) -> int:
    return {Health.CRITICAL: 3, Health.WARNING: 2, Health.UNKNOWN: 1, Health.OK: 0}[status]


def _console(out: TextIO) -> Console:
    is_tty = hasattr(out, "isatty") and out.isatty()
    return Console(
        file=out,
        highlight=False,
        soft_wrap=False,
        width=None if is_tty else 160,
        force_terminal=None if out is sys.stdout else False,
    )


_STYLE = {
    Health.OK: "green",
    Health.WARNING: "yellow",
    Health.CRITICAL: "bold red",
    Health.UNKNOWN: "magenta",
}


def check_text(
    fleet: FleetSnapshot, results: list[CheckResult], overall: Health, out: TextIO
) -> None:
    console = _console(out)
    table = Table(title=f"drconsole check — {overall.label}", title_justify="left")
    for column in ("node", "server", "check", "status", "detail"):
        table.add_column(column, overflow="fold")
    for r in results:
        table.add_row(
            r.node,
            r.server or "-",
            r.check,
            f"[{_STYLE[r.status]}]{r.status.label}[/]",
            r.detail,
        )
    console.print(table)
    console.print(f"generated at {fleet.taken_at:%Y-%m-%d %H:%M:%S} UTC; overall {overall.label}")


def _server_dict(server: ServerSnapshot, results: list[CheckResult]) -> dict[str, Any]:
    catalogue = server.catalogue
    queue = server.archive_queue
    stream = server.wal_stream
    geo = server.geo
    window = server.window
    mine = [r for r in results if r.node == server.node and r.server == server.server]
    health = Health.OK
    for state in (Health.CRITICAL, Health.WARNING, Health.UNKNOWN):
        if any(r.status is state for r in mine):
            health = state
            break
    return {
        "node": server.node,
        "server": server.server,
        "role": server.role.value,
        "site": server.site,
        "health": health.label,
        "taken_at": _iso(server.taken_at),
        "backups": [
            {
                "backup_id": b.backup_id,
                "status": b.status,
                "backup_type": b.backup_type,
                "end_time": _iso(b.end_time),
                "size_bytes": b.size_bytes,
                "wal_size_bytes": b.wal_size_bytes,
                "retention_status": b.retention_status,
            }
            for b in (catalogue.backups if catalogue is not None else ())
        ],
        "catalogue_error": catalogue.error if catalogue is not None else None,
        "last_archived_wal": queue.last_archived_wal if queue is not None else None,
        "last_archived_time": _iso(queue.last_archived_time) if queue is not None else None,
        "wal_stream": None
        if stream is None
        else {
            "streaming_archiver": stream.streaming_archiver,
            "receive_wal_running": stream.receive_wal_running,
            "receive_wal_pid": stream.receive_wal_pid,
            "slot_name": stream.slot_name,
            "slot_active": stream.slot_active,
            "slot_restart_lsn": stream.slot_restart_lsn,
            "slot_retained_bytes": stream.slot_retained_bytes,
            "server_lsn": stream.server_lsn,
            "lag_bytes": stream.lag_bytes,
            "lag_seconds": stream.lag_seconds,
            "error": stream.error,
        },
        "archive_queue": None
        if queue is None
        else {
            "archiver_enabled": queue.archiver_enabled,
            "pg_archived_count": queue.pg.archived_count if queue.pg else None,
            "pg_failed_count": queue.pg.failed_count if queue.pg else None,
            "pg_last_failed_wal": queue.pg.last_failed_wal if queue.pg else None,
            "pg_last_failed_time": _iso(queue.pg.last_failed_time) if queue.pg else None,
            "pg_ready_count": queue.pg.ready_count if queue.pg else None,
            "pg_error": queue.pg_error,
            "barman_failed_count": queue.barman_failed_count,
            "incoming_count": queue.incoming_count,
            "streaming_count": queue.streaming_count,
            "errors_count": queue.errors_count,
            "archived_wals_per_hour": queue.archived_wals_per_hour,
            "error": queue.error,
        },
        "geo": None
        if geo is None
        else {
            "primary_node": geo.primary_node,
            "missing_backups": list(geo.missing_backups),
            "syncing_backups": list(geo.syncing_backups),
            "extra_backups": list(geo.extra_backups),
            "primary_last_wal": geo.primary_last_wal,
            "passive_last_wal": geo.passive_last_wal,
            "wal_lag_segments": geo.wal_lag_segments,
            "wal_lag_bytes": geo.wal_lag_bytes,
            "wal_lag_seconds": geo.wal_lag_seconds,
            "last_sync": _iso(geo.last_sync),
            "sync_processes": [{"name": p.name, "pid": p.pid} for p in geo.sync_processes],
            "error": geo.error,
        },
        "recovery_window": None
        if window is None
        else {
            "begin": _iso(window.begin),
            "end": _iso(window.end),
            "oldest_backup_id": window.oldest_backup_id,
            "latest_backup_id": window.latest_backup_id,
            "rpo_seconds": window.rpo_seconds,
        },
        "barman_checks": {c.name: ("OK" if c.ok else "FAILED") for c in server.barman_checks},
        "processes": [{"name": p.name, "pid": p.pid} for p in server.processes],
        "postgres_error": server.postgres_error,
        "barman_version": server.barman_version,
    }


def status_json(fleet: FleetSnapshot, results: list[CheckResult]) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "generated_at": _iso(fleet.taken_at),
        "nodes": [
            {
                "node": n.node,
                "role": n.role.value,
                "site": n.site,
                "reachable": n.reachable,
                "error": n.error,
                "taken_at": _iso(n.taken_at),
                "barman_version": n.barman_version,
            }
            for n in fleet.nodes.values()
        ],
        "servers": [_server_dict(s, results) for s in fleet.servers()],
    }


def status_text(fleet: FleetSnapshot, results: list[CheckResult], out: TextIO) -> None:
    console = _console(out)
    now = fleet.taken_at
    for node in fleet.nodes.values():
        state = "reachable" if node.reachable else f"UNREACHABLE: {node.error}"
        barman = f", Barman {node.barman_version}" if node.barman_version else ""
        console.print(
            f"[bold]{node.node}[/] ({node.role.value}, {node.site or '-'}{barman}) {state}"
        )
        for server in node.servers.values():
            data = _server_dict(server, results)
            console.print(f"  [bold]{server.server}[/]  health {data['health']}")
            window = server.window
            if window is not None:
                console.print(
                    f"    recoverable: {_iso(window.begin) or '-'} .. {_iso(window.end) or '-'}"
                    f"  RPO {fmt.duration(window.rpo_seconds)}"
                )
            queue = server.archive_queue
            if queue is not None:
                age = fmt.age_seconds(queue.last_archived_time, now)
                console.print(
                    f"    last archived WAL: {queue.last_archived_wal or '-'}"
                    f" ({fmt.duration(age)} ago); incoming {queue.incoming_count},"
                    f" streaming {queue.streaming_count}, errors {queue.errors_count}"
                )
            stream = server.wal_stream
            if stream is not None:
                console.print(
                    f"    WAL stream: receive-wal "
                    f"{'running' if stream.receive_wal_running else 'NOT running'}; slot "
                    f"{stream.slot_name} {'active' if stream.slot_active else 'INACTIVE'};"
                    f" lag {fmt.size(stream.lag_bytes)}"
                )
            geo = server.geo
            if geo is not None:
                console.print(
                    f"    geo vs {geo.primary_node}: missing {list(geo.missing_backups)},"
                    f" WAL lag {geo.wal_lag_segments} segments,"
                    f" last sync {fmt.duration(fmt.age_seconds(geo.last_sync, now))} ago"
                    + (f"; {geo.error}" if geo.error else "")
                )
            catalogue = server.catalogue
            if catalogue is not None:
                for b in catalogue.backups:
                    console.print(
                        f"    backup {b.backup_id} {b.status:<8} end {_iso(b.end_time) or '-'}"
                        f"  size {fmt.size(b.size_bytes)}"
                    )
