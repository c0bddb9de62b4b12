"""The fleet's DR figures as Prometheus metric families (pure: a snapshot in, families out).

Two sets, every family labelled with the Barman `node`:
- prometheus-barman-exporter's names and labels (`barman_*`), so that its Grafana dashboard keeps
  working;
- drconsole's own (`drconsole_*`), labelled `node` and `server`: what `--run check` judges and
  what only drconsole knows (WAL stream, archive queue, passive-node lag, RPO, restore drills).
A figure drconsole does not know is left out (no sample), never reported as 0.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

from dr_console.models import CheckResult, FleetSnapshot, ServerSnapshot

DRILL_JOURNAL = "drills.jsonl"
_MAX_DRILL_JOURNAL = 16 << 20  # bytes read at most (the newest drills are at the end)
_CHECK_NAME = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class LastDrill:
    started_at: datetime
    rto_seconds: float | None
    success: bool


@dataclass(frozen=True)
class MetricsInput:
    fleet: FleetSnapshot
    checks: list[CheckResult]
    drills: dict[tuple[str, str], LastDrill] = field(default_factory=dict)  # (node, server)
    now: datetime | None = None  # when the scrape is answered (default: the snapshot's time)


def _epoch(at: datetime | None) -> float | None:
    return at.timestamp() if at is not None else None


def _check_label(name: str) -> str:
    """Barman's check name as prometheus-barman-exporter labels it ("wal maximum age" ->
    "wal_maximum_age")."""
    return _CHECK_NAME.sub("_", name.lower()).strip("_")


_F = TypeVar("_F", GaugeMetricFamily, CounterMetricFamily, InfoMetricFamily)


class _Families:
    """Families by name, created on first use with their HELP text, in a stable order."""

    def __init__(self) -> None:
        self._families: dict[str, Metric] = {}

    def get(self, kind: type[_F], name: str, help_text: str, labels: list[str]) -> _F:
        family = self._families.get(name)
        if family is None:
            family = kind(name, help_text, labels=labels)
            self._families[name] = family
        assert isinstance(family, kind)
        return family

    def all(self) -> list[Metric]:
        return list(self._families.values())


_NS = ["node", "server"]
_Gauge = Callable[[str, list[str], float | int | bool | None], None]

# name -> HELP, for every family drconsole exports; all are declared even when empty, so that
# HELP and TYPE are always there (and a dashboard's query finds the family).
_GAUGES: dict[str, tuple[str, list[str]]] = {
    "barman_up": ("Barman check result: 1 passed, 0 failed (barman check).",
                  ["node", "server", "check"]),
    "barman_backups_total": ("Number of backups Barman lists for the server (any status).", _NS),
    "barman_backups_failed": ("Number of FAILED backups Barman lists for the server.", _NS),
    "barman_last_backup": ("End time of the newest DONE backup, Unix seconds.", _NS),
    "barman_first_backup": ("End time of the oldest DONE backup, Unix seconds.", _NS),
    "barman_last_backup_copy_time": (
        "Duration of the newest DONE backup from its begin to its end time, seconds.", _NS),
    "barman_backup_size": ("Size of a DONE backup in bytes; number 1 is the newest.",
                           ["node", "server", "number"]),
    "barman_backup_wal_size": ("Size of the WAL a DONE backup needs, bytes; number 1 is the "
                               "newest.", ["node", "server", "number"]),
    "barman_metrics_update": ("When drconsole last read this node, Unix seconds.", ["node"]),
    "drconsole_node_up": ("1 when drconsole reached the Barman node in its last poll, else 0.",
                          ["node"]),
    "drconsole_check_status": (
        "Result of each --run check check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
        ["node", "server", "check"]),
    "drconsole_rpo_seconds": ("Seconds since the newest WAL safely on the node was written: "
                              "what a disaster now would lose.", _NS),
    "drconsole_recovery_window_begin_timestamp_seconds": (
        "Earliest point the node can recover to (oldest usable backup's end), Unix seconds.", _NS),
    "drconsole_recovery_window_end_timestamp_seconds": (
        "Latest point the node can recover to (its newest complete WAL), Unix seconds.", _NS),
    "drconsole_stream_lag_bytes": (
        "WAL written by PostgreSQL and not yet received by Barman's receive-wal, bytes.", _NS),
    "drconsole_slot_retained_bytes": ("WAL the server's replication slot retains, bytes.", _NS),
    "drconsole_receive_wal_running": ("1 when Barman's receive-wal runs for the server, else 0 "
                                      "(only for servers that stream WAL).", _NS),
    "drconsole_last_archived_wal_timestamp_seconds": (
        "When the newest WAL on the Barman node was archived, Unix seconds.", _NS),
    "drconsole_archive_ready_files": ("WAL files PostgreSQL has not archived yet (.ready).", _NS),
    "drconsole_geo_missing_backups": (
        "DONE backups of the primary node not yet on this passive node.", _NS),
    "drconsole_geo_wal_lag_segments": (
        "WAL segments the passive node is behind its primary node.", _NS),
    "drconsole_geo_wal_lag_bytes": ("WAL the passive node is behind its primary node, bytes.", _NS),
    "drconsole_geo_wal_lag_seconds": (
        "Age of the primary's newest WAL the passive node does not have yet, seconds.", _NS),
    "drconsole_geo_last_sync_timestamp_seconds": (
        "When the passive node last synced with its primary node, Unix seconds.", _NS),
    "drconsole_last_drill_rto_seconds": ("Recovery time of the newest restore drill (recover + "
                                         "replay), seconds.", _NS),
    "drconsole_last_drill_success": ("1 when the newest restore drill verified the copy, else 0.",
                                     _NS),
    "drconsole_last_drill_timestamp_seconds": ("When the newest restore drill started, Unix "
                                               "seconds.", _NS),
    "drconsole_scrape_age_seconds": ("Age of the figures this scrape reports (time since the "
                                     "collection they come from), seconds.", []),
}
_COUNTERS: dict[str, tuple[str, list[str]]] = {
    "drconsole_archiver_failed": (
        "Failed archive_command runs PostgreSQL counted (pg_stat_archiver.failed_count).", _NS),
}
_INFOS: dict[str, tuple[str, list[str]]] = {
    "drconsole_barman": ("The Barman version each node runs.", ["node", "version"]),
}


def families(data: MetricsInput) -> list[Metric]:
    out = _Families()
    for name, (help_text, labels) in _GAUGES.items():
        out.get(GaugeMetricFamily, name, help_text, labels)
    for name, (help_text, labels) in _COUNTERS.items():
        out.get(CounterMetricFamily, name, help_text, labels)
    for name, (help_text, labels) in _INFOS.items():
        out.get(InfoMetricFamily, name, help_text, labels)

    def gauge(name: str, labels: list[str], value: float | int | bool | None) -> None:
        if value is not None:
            out.get(GaugeMetricFamily, name, *_GAUGES[name]).add_metric(labels, float(value))

    fleet = data.fleet
    now = data.now or fleet.taken_at
    gauge("drconsole_scrape_age_seconds", [], max(0.0, (now - fleet.taken_at).total_seconds()))
    for node in fleet.nodes.values():
        gauge("drconsole_node_up", [node.node], node.reachable)
        gauge("barman_metrics_update", [node.node], _epoch(node.taken_at))
        if node.barman_version:
            out.get(InfoMetricFamily, "drconsole_barman", *_INFOS["drconsole_barman"]).add_metric(
                [node.node, node.barman_version], {})
        for server in node.servers.values():
            _server(server, gauge, out)
            drill = data.drills.get((node.node, server.server))
            if drill is not None:
                labels = [node.node, server.server]
                gauge("drconsole_last_drill_rto_seconds", labels, drill.rto_seconds)
                gauge("drconsole_last_drill_success", labels, drill.success)
                gauge("drconsole_last_drill_timestamp_seconds", labels, _epoch(drill.started_at))
    for result in data.checks:
        gauge("drconsole_check_status", [result.node, result.server or "", result.check],
              int(result.status))  # fmt: skip
    return out.all()


def _server(server: ServerSnapshot, gauge: _Gauge, out: _Families) -> None:
    labels = [server.node, server.server]
    for check in server.barman_checks:
        gauge("barman_up", [*labels, _check_label(check.name)], check.ok)
    catalogue = server.catalogue
    if catalogue is not None and catalogue.error is None:
        gauge("barman_backups_total", labels, len(catalogue.backups))
        gauge("barman_backups_failed", labels,
              sum(1 for b in catalogue.backups if b.status == "FAILED"))  # fmt: skip
        done = catalogue.done
        if done:
            newest, oldest = done[0], done[-1]
            gauge("barman_last_backup", labels, _epoch(newest.end_time))
            gauge("barman_first_backup", labels, _epoch(oldest.end_time))
            if newest.begin_time is not None and newest.end_time is not None:
                gauge("barman_last_backup_copy_time", labels,
                      (newest.end_time - newest.begin_time).total_seconds())  # fmt: skip
        for number, backup in enumerate(done, start=1):
            gauge("barman_backup_size", [*labels, str(number)], backup.size_bytes)
            gauge("barman_backup_wal_size", [*labels, str(number)], backup.wal_size_bytes)
    window = server.window
    if window is not None:
        gauge("drconsole_rpo_seconds", labels, window.rpo_seconds)
        gauge("drconsole_recovery_window_begin_timestamp_seconds", labels, _epoch(window.begin))
        gauge("drconsole_recovery_window_end_timestamp_seconds", labels, _epoch(window.end))
    stream = server.wal_stream
    if stream is not None and stream.error is None:
        gauge("drconsole_stream_lag_bytes", labels, stream.lag_bytes)
        gauge("drconsole_slot_retained_bytes", labels, stream.slot_retained_bytes)
        if stream.streaming_archiver:
            gauge("drconsole_receive_wal_running", labels, stream.receive_wal_running)
    queue = server.archive_queue
    if queue is not None and queue.error is None:
        gauge("drconsole_last_archived_wal_timestamp_seconds", labels,
              _epoch(queue.last_archived_time))  # fmt: skip
        if queue.pg is not None and queue.archiver_enabled is not False:
            gauge("drconsole_archive_ready_files", labels, queue.pg.ready_count)
            out.get(CounterMetricFamily, "drconsole_archiver_failed",
                    *_COUNTERS["drconsole_archiver_failed"]).add_metric(
                        labels, float(queue.pg.failed_count))  # fmt: skip
    geo = server.geo
    if geo is not None and geo.error is None:
        gauge("drconsole_geo_missing_backups", labels, len(geo.missing_backups))
        gauge("drconsole_geo_wal_lag_segments", labels, geo.wal_lag_segments)
        gauge("drconsole_geo_wal_lag_bytes", labels, geo.wal_lag_bytes)
        gauge("drconsole_geo_wal_lag_seconds", labels, geo.wal_lag_seconds)
        gauge("drconsole_geo_last_sync_timestamp_seconds", labels, _epoch(geo.last_sync))


def read_last_drills(journal_dir: str) -> dict[tuple[str, str], LastDrill]:
    """The newest drill per (node, server) from <journal_dir>/drills.jsonl; a line that cannot be
    read is skipped (a drill journal never stops the metrics)."""
    path = Path(os.path.expanduser(journal_dir)) / DRILL_JOURNAL
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return {}
        os.lseek(fd, max(0, st.st_size - _MAX_DRILL_JOURNAL), os.SEEK_SET)
        with os.fdopen(os.dup(fd), "rb") as f:
            raw = f.read(_MAX_DRILL_JOURNAL)
    except OSError:
        return {}
    finally:
        os.close(fd)
    return _last_drills(raw.decode("utf-8", errors="replace").splitlines())


def _last_drills(lines: Iterable[str]) -> dict[tuple[str, str], LastDrill]:
    found: dict[tuple[str, str], LastDrill] = {}
    for line in lines:
        try:
            doc = json.loads(line)
            if not isinstance(doc, dict) or doc.get("event") != "drill":
                continue
            key = (str(doc["node"]), str(doc["server"]))
            started = datetime.fromisoformat(str(doc["started_at"]))
            rto = doc.get("rto_seconds")
            drill = LastDrill(
                started_at=started,
                rto_seconds=float(rto) if isinstance(rto, int | float) else None,
                success=doc.get("verified") is True,
            )
        except (ValueError, KeyError, TypeError, RecursionError):
            continue
        current = found.get(key)
        if current is None or drill.started_at >= current.started_at:
            found[key] = drill
    return found
