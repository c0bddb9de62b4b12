"""Pure parsers from Barman 3.19 output to drconsole models.

Every public parser is total: whatever it is given, it returns a value or raises
`BarmanOutputError` with a message naming the command and the place. Display strings inside
Barman's JSON (status messages, sizes) are parsed where useful; when a display string has an
unexpected form the parsed field is None and the verbatim string is kept.

Times: Barman prints some times (status `last_archived_wal`, list-backups `end_time`) in the
node's local time with no zone. We ASSUME the node runs in UTC (true of the lab and of the
reference deployment) and read them as UTC; where Barman gives an epoch or an ISO time with an
offset, that is used instead.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from dr_console.core.barman_errors import BarmanOutputError
from dr_console.models import (
    Backup,
    BackupDetail,
    BarmanCheck,
    BarmanProcess,
    BarmanStatus,
    ReplicationClient,
    SyncInfo,
    SyncWal,
)

P = ParamSpec("P")
R = TypeVar("R")

MESSAGE_KEYS = ("_INFO", "_WARNING", "_ERROR", "_EXCEPTION")
_MAX_TEXT = 64 * 1024 * 1024  # refuse to parse more than this (Barman never prints that much)


@dataclass(frozen=True)
class Messages:
    """The `_INFO/_WARNING/_ERROR/_EXCEPTION` lists of a Barman JSON document."""

    info: tuple[str, ...] = ()
    warning: tuple[str, ...] = ()
    error: tuple[str, ...] = ()
    exception: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReplicationStatus:
    """`barman replication-status` for one server."""

    server_lsn: str | None
    clients: tuple[ReplicationClient, ...]


@dataclass(frozen=True)
class NagiosResult:
    """`barman check --nagios`: the plugin line split into its parts."""

    status: str  # OK, WARNING, CRITICAL, UNKNOWN
    text: str
    perfdata: dict[str, str] = field(default_factory=dict)
    details: tuple[str, ...] = ()  # the plugin's long output: one line per failed check


def total(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn any unexpected exception inside a parser into BarmanOutputError naming `what`."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except BarmanOutputError:
                raise
            except (ValueError, TypeError, KeyError, AttributeError, IndexError,
                    OverflowError, RecursionError, OSError, MemoryError) as exc:
                raise BarmanOutputError(f"unexpected output from barman {what}: {exc}") from exc

        return inner

    return wrap


# --- small typed accessors ---------------------------------------------------------------------


def _fail(what: str, where: str, problem: str) -> BarmanOutputError:
    return BarmanOutputError(f"unexpected output from barman {what}: {where}: {problem}")


def _obj(value: object, what: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(what, where, f"expected an object, got {type(value).__name__}")
    return value


def _list(value: object, what: str, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(what, where, f"expected a list, got {type(value).__name__}")
    return value


def _str(value: object, what: str, where: str) -> str:
    if not isinstance(value, str):
        raise _fail(what, where, f"expected text, got {type(value).__name__}")
    return value


def _opt_str(value: object, what: str, where: str) -> str | None:
    return None if value is None else _str(value, what, where)


def _opt_int(value: object, what: str, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(what, where, f"expected a whole number, got {type(value).__name__}")
    return value


def _opt_float(value: object, what: str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(what, where, f"expected a number, got {type(value).__name__}")
    return float(value)


def _epoch(value: object, what: str, where: str) -> datetime | None:
    """An epoch as a number or as a string of digits ("1796059182")."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            seconds = float(value)
        except ValueError:
            raise _fail(what, where, f"{value[:40]!r} is not an epoch time") from None
    else:
        number = _opt_float(value, what, where)
        assert number is not None
        seconds = number
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise _fail(what, where, f"epoch {seconds!r} is out of range") from None


def _iso(value: object, what: str, where: str) -> datetime | None:
    """Barman's `isoformat(" ")` times; a time without an offset is read as UTC."""
    text = _opt_str(value, what, where)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(what, where, f"{text[:40]!r} is not a time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_ctime(text: str) -> datetime | None:
    """`Mon Nov 30 17:19:51 2026` (node local time, assumed UTC) -> aware datetime or None."""
    try:
        return datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y").replace(
            tzinfo=UTC
        )
    except ValueError:
        return None


def _servers(doc: dict[str, Any]) -> dict[str, Any]:
    """The per-server part of a document: every key that is not a message list."""
    return {k: v for k, v in doc.items() if k not in MESSAGE_KEYS}


# --- documents -----------------------------------------------------------------------------------


def load_json(text: str, what: str) -> dict[str, Any]:
    """Decode one JSON object printed by barman; anything else is BarmanOutputError."""
    if not isinstance(text, str):
        raise BarmanOutputError(f"unexpected output from barman {what}: not text")
    if len(text) > _MAX_TEXT:
        raise BarmanOutputError(f"unexpected output from barman {what}: {len(text)} characters")
    stripped = text.strip()
    if not stripped:
        raise BarmanOutputError(f"barman {what} printed nothing")
    try:
        doc = json.loads(stripped)
    except (ValueError, RecursionError) as exc:
        raise BarmanOutputError(f"barman {what} did not print valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BarmanOutputError(
            f"unexpected output from barman {what}: expected a JSON object, "
            f"got {type(doc).__name__}"
        )
    return doc


@total("output")
def parse_messages(doc: object, what: str = "output") -> Messages:
    """The message lists of any document (missing lists are empty)."""
    d = _obj(doc, what, "document")
    lists: list[tuple[str, ...]] = []
    for key in MESSAGE_KEYS:
        raw = d.get(key, [])
        items = _list(raw, what, key)
        lists.append(tuple(_str(item, what, key) for item in items))
    return Messages(*lists)


@total("list-servers")
def parse_list_servers(doc: object) -> dict[str, str]:
    what = "list-servers"
    out: dict[str, str] = {}
    for name, entry in _servers(_obj(doc, what, "document")).items():
        description = _obj(entry, what, name).get("description")
        out[name] = _opt_str(description, what, f"{name}.description") or ""
    return out


@total("show-servers")
def parse_show_servers(doc: object) -> dict[str, dict[str, Any]]:
    what = "show-servers"
    return {
        name: _obj(entry, what, name)
        for name, entry in _servers(_obj(doc, what, "document")).items()
    }


_WAL_AT = re.compile(r"([0-9A-F]{24}\S*), at (.+)")
_PER_HOUR = re.compile(r"(\d+(?:\.\d+)?)/hour")


def _bool_text(text: str | None) -> bool | None:
    return {"True": True, "False": False}.get(text or "")


def _int_text(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() and len(text) < 19 else None


_FAILURES_RE = re.compile(r"(\d{1,18})(?: \(.*\))?")


def _failures(text: str | None) -> int | None:
    """PostgreSQL's archiver failures: "0", or with the last one "9 (<WAL> at <time>)"."""
    match = _FAILURES_RE.fullmatch(text or "")
    return int(match.group(1)) if match else None


def _none_text(text: str | None) -> str | None:
    return None if text in (None, "", "None") else text


@total("status")
def parse_status(doc: object) -> dict[str, BarmanStatus]:
    what = "status"
    out: dict[str, BarmanStatus] = {}
    for name, entry in _servers(_obj(doc, what, "document")).items():
        messages: dict[str, str] = {}
        for key, item in _obj(entry, what, name).items():
            messages[key] = _str(_obj(item, what, f"{name}.{key}").get("message"), what,
                                 f"{name}.{key}.message")
        wal: str | None = None
        wal_time: datetime | None = None
        match = _WAL_AT.fullmatch(messages.get("last_archived_wal", ""))
        if match:
            wal, wal_time = match.group(1), parse_ctime(match.group(2))
        rate = _PER_HOUR.fullmatch(messages.get("server_archived_wals_per_hour", ""))
        out[name] = BarmanStatus(
            server=name,
            messages=messages,
            active=_bool_text(messages.get("active")),
            disabled=_bool_text(messages.get("disabled")),
            passive_node=_bool_text(messages.get("passive_node")),
            pg_version=_none_text(messages.get("pg_version")),
            current_wal=_none_text(messages.get("current_xlog")),
            last_archived_wal=wal,
            last_archived_time=wal_time,
            failed_count=_failures(messages.get("failed_count")),
            backups_number=_int_text(messages.get("backups_number")),
            first_backup=_none_text(messages.get("first_backup")),
            last_backup=_none_text(messages.get("last_backup")),
            archived_wals_per_hour=float(rate.group(1)) if rate else None,
            primary_ssh_command=_none_text(messages.get("primary_ssh_command")),
            description=_none_text(messages.get("description")),
        )
    return out


@total("check")
def parse_check(doc: object) -> dict[str, tuple[BarmanCheck, ...]]:
    what = "check"
    out: dict[str, tuple[BarmanCheck, ...]] = {}
    for name, entry in _servers(_obj(doc, what, "document")).items():
        checks: list[BarmanCheck] = []
        for check, item in _obj(entry, what, name).items():
            where = f"{name}.{check}"
            body = _obj(item, what, where)
            status = _str(body.get("status"), what, f"{where}.status")
            if status not in ("OK", "FAILED"):
                raise _fail(what, f"{where}.status", f"unknown status {status[:20]!r}")
            hint = _opt_str(body.get("hint"), what, f"{where}.hint") or ""
            checks.append(BarmanCheck(name=check, ok=status == "OK", hint=hint))
        out[name] = tuple(checks)
    return out


def _backup_from_list(item: object, what: str, where: str) -> Backup:
    b = _obj(item, what, where)
    return Backup(
        backup_id=_str(b.get("backup_id"), what, f"{where}.backup_id"),
        status=_str(b.get("status"), what, f"{where}.status"),
        backup_type=_opt_str(b.get("backup_type"), what, f"{where}.backup_type"),
        backup_name=_opt_str(b.get("backup_name"), what, f"{where}.backup_name"),
        end_time=_epoch(b.get("end_time_timestamp"), what, f"{where}.end_time_timestamp"),
        size_bytes=_opt_int(b.get("size_bytes"), what, f"{where}.size_bytes"),
        wal_size_bytes=_opt_int(b.get("wal_size_bytes"), what, f"{where}.wal_size_bytes"),
        retention_status=_opt_str(b.get("retention_status"), what, f"{where}.retention_status"),
    )


@total("list-backups")
def parse_list_backups(doc: object) -> dict[str, tuple[Backup, ...]]:
    """Backups per server, newest first as Barman lists them (EMPTY/SYNCING ones included)."""
    what = "list-backups"
    out: dict[str, tuple[Backup, ...]] = {}
    for name, entries in _servers(_obj(doc, what, "document")).items():
        items = _list(entries, what, name)
        out[name] = tuple(
            _backup_from_list(item, what, f"{name}[{i}]") for i, item in enumerate(items)
        )
    return out


def _percent(text: str | None) -> float | None:
    match = re.fullmatch(r"(-?\d+(?:\.\d+)?)%", text or "")
    return float(match.group(1)) if match else None


def _catalog_ref(text: str | None) -> str | None:
    # "- (this is the latest base backup)" / "- (this is the oldest base backup)"
    return None if not text or text.startswith("-") else text


@total("show-backup")
def parse_show_backup(doc: object, server: str) -> BackupDetail:
    """One backup; a running (EMPTY) backup has only a few keys and the rest stay None."""
    what = "show-backup"
    servers = _servers(_obj(doc, what, "document"))
    if server not in servers:
        raise _fail(what, "document", f"no entry for server {server[:40]!r}")
    d = _obj(servers[server], what, server)
    base = _obj(d.get("base_backup_information") or {}, what, "base_backup_information")
    wal = _obj(d.get("wal_information") or {}, what, "wal_information")
    catalog = _obj(d.get("catalog_information") or {}, what, "catalog_information")
    # The base backup's own (deduplicated) size: `backup_size` from Barman 3.11, before it
    # `incremental_size` (3.4 to 3.10 call the whole size `disk_usage`).
    size_key = "backup_size_bytes" if "backup_size_bytes" in base else "incremental_size_bytes"
    version = d.get("postgresql_version")
    if isinstance(version, bool) or not isinstance(version, int | str | None):
        raise _fail(what, "postgresql_version", f"unexpected {type(version).__name__}")
    backup = Backup(
        backup_id=_str(d.get("backup_id"), what, "backup_id"),
        status=_str(d.get("status"), what, "status"),
        backup_type=_opt_str(d.get("backup_type"), what, "backup_type"),
        backup_name=_opt_str(d.get("backup_name"), what, "backup_name"),
        begin_time=_iso(base.get("begin_time"), what, "begin_time"),
        end_time=_iso(base.get("end_time"), what, "end_time"),
        wal_size_bytes=_opt_int(wal.get("disk_usage_bytes"), what, "disk_usage_bytes"),
        deduplicated_size_bytes=_opt_int(base.get(size_key), what, size_key),
        begin_wal=_opt_str(base.get("begin_wal"), what, "begin_wal"),
        end_wal=_opt_str(base.get("end_wal"), what, "end_wal"),
        timeline=_opt_int(base.get("timeline"), what, "timeline"),
    )
    return BackupDetail(
        server=server,
        backup=backup,
        begin_lsn=_opt_str(base.get("begin_lsn"), what, "begin_lsn"),
        end_lsn=_opt_str(base.get("end_lsn"), what, "end_lsn"),
        pgdata_directory=_opt_str(d.get("pgdata_directory"), what, "pgdata_directory"),
        postgresql_version=None if version is None else str(version),
        system_id=_opt_str(d.get("system_id"), what, "system_id"),
        cluster_size_bytes=_opt_int(d.get("cluster_size_bytes"), what, "cluster_size_bytes"),
        wal_files=_opt_int(wal.get("no_of_files"), what, "no_of_files"),
        wal_last_available=_opt_str(wal.get("last_available"), what, "last_available"),
        previous_backup=_catalog_ref(
            _opt_str(catalog.get("previous_backup"), what, "previous_backup")),
        next_backup=_catalog_ref(_opt_str(catalog.get("next_backup"), what, "next_backup")),
        copy_time_seconds=_opt_float(base.get("copy_time_seconds"), what, "copy_time_seconds"),
        resources_saved_percentage=_percent(
            _opt_str(base.get("resources_saved_percentage"), what,
                     "resources_saved_percentage")),
        raw=d,
    )


def _lag(value: object, what: str, where: str) -> int | None:
    # Barman's *_lsn_diff_bytes is client LSN minus server LSN; lag is the opposite sign.
    diff = _opt_int(value, what, where)
    return None if diff is None else -diff


@total("replication-status")
def parse_replication_status(doc: object) -> dict[str, ReplicationStatus]:
    """Per server; passive servers are absent (Barman only says it skipped them in _INFO)."""
    what = "replication-status"
    out: dict[str, ReplicationStatus] = {}
    for name, entry in _servers(_obj(doc, what, "document")).items():
        d = _obj(entry, what, name)
        clients: list[ReplicationClient] = []
        for i, item in enumerate(_list(d.get("streaming_clients", []), what, name)):
            where = f"{name}.streaming_clients[{i}]"
            c = _obj(item, what, where)

            def s(key: str, c: dict[str, Any] = c, where: str = where) -> str | None:
                return _opt_str(c.get(key), what, f"{where}.{key}")

            def lag(key: str, c: dict[str, Any] = c, where: str = where) -> int | None:
                return _lag(c.get(f"{key}_lsn_diff_bytes"), what, f"{where}.{key}")

            clients.append(
                ReplicationClient(
                    application_name=s("application_name") or "",
                    state=s("current_state"),
                    sync_state=s("current_sync_state"),
                    sent_lsn=s("sent_lsn"),
                    write_lsn=s("write_lsn"),
                    flush_lsn=s("flush_lsn"),
                    replay_lsn=s("replay_lsn"),
                    sent_lag_bytes=lag("sent"),
                    write_lag_bytes=lag("write"),
                    flush_lag_bytes=lag("flush"),
                    replay_lag_bytes=lag("replay"),
                    slot_name=s("replication_slot"),
                    client_addr=s("ip_address"),
                    pid=_opt_int(c.get("wal_sender_pid"), what, f"{where}.wal_sender_pid"),
                    started_at=_iso(c.get("started_at"), what, f"{where}.started_at"),
                )
            )
        out[name] = ReplicationStatus(
            server_lsn=_opt_str(d.get("server_lsn"), what, f"{name}.server_lsn"),
            clients=tuple(clients),
        )
    return out


@total("list-processes")
def parse_list_processes(doc: object) -> dict[str, tuple[BarmanProcess, ...]]:
    what = "list-processes"
    out: dict[str, tuple[BarmanProcess, ...]] = {}
    for name, entries in _servers(_obj(doc, what, "document")).items():
        procs: list[BarmanProcess] = []
        for i, item in enumerate(_list(entries, what, name)):
            p = _obj(item, what, f"{name}[{i}]")
            pid = _opt_int(p.get("pid"), what, f"{name}[{i}].pid")
            if pid is None:
                raise _fail(what, f"{name}[{i}].pid", "missing")
            procs.append(BarmanProcess(name=_str(p.get("name"), what, f"{name}[{i}].name"),
                                       pid=pid))
        out[name] = tuple(procs)
    return out


@total("sync-info")
def parse_sync_info(text: str, server: str) -> SyncInfo:
    """Plain `barman sync-info SERVER [WAL POS]` (its own JSON; never run it with -f json)."""
    what = "sync-info"
    d = load_json(text, what)
    backups = _obj(d.get("backups", {}), what, "backups")
    statuses = {
        bid: _str(_obj(info, what, f"backups.{bid}").get("status"), what,
                  f"backups.{bid}.status")
        for bid, info in backups.items()
    }
    wals: list[SyncWal] = []
    for i, item in enumerate(_list(d.get("wals", []), what, "wals")):
        w = _obj(item, what, f"wals[{i}]")
        wals.append(
            SyncWal(
                name=_str(w.get("name"), what, f"wals[{i}].name"),
                size_bytes=_opt_int(w.get("size"), what, f"wals[{i}].size"),
                time=_epoch(w.get("time"), what, f"wals[{i}].time"),
            )
        )
    return SyncInfo(
        server=server,
        last_name=_opt_str(d.get("last_name"), what, "last_name"),
        last_position=_opt_int(d.get("last_position"), what, "last_position"),
        backup_ids=tuple(sorted(backups)),
        backup_statuses=statuses,
        wals=tuple(wals),
    )


@total("diagnose")
def parse_diagnose(text: str) -> dict[str, Any]:
    """Plain `barman diagnose` (its own JSON): global, models, servers."""
    d = load_json(text, "diagnose")
    _obj(d.get("servers", {}), "diagnose", "servers")
    return d


_NAGIOS = re.compile(r"BARMAN (OK|WARNING|CRITICAL|UNKNOWN) - ([^|\n]*)(?:\|(.*))?")


@total("check --nagios")
def parse_nagios(text: str) -> NagiosResult:
    """`barman check --nagios` (plain: with -f json Barman prints `{}` before the output).

    Barman exits 0/1/2/3 like a Nagios plugin; the first line is `BARMAN STATUS - text|perf`."""
    what = "check --nagios"
    if not isinstance(text, str):
        raise _fail(what, "output", "not text")
    first, *details = text.strip().removeprefix("{}").strip().splitlines() or [""]
    line = first.strip()
    match = _NAGIOS.fullmatch(line)
    if not match:
        raise _fail(what, "output", f"not a Nagios line: {line[:80]!r}")
    perf: dict[str, str] = {}
    for part in (match.group(3) or "").split():
        key, sep, value = part.partition("=")
        if not sep:
            raise _fail(what, "perfdata", f"{part[:40]!r} is not key=value")
        perf[key] = value
    return NagiosResult(
        status=match.group(1),
        text=match.group(2).strip(),
        perfdata=perf,
        details=tuple(d.strip() for d in details if d.strip()),
    )
