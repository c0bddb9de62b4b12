"""Direct PostgreSQL probes: archiver, WAL position, WAL senders and replication slots.

One psycopg 3 AsyncConnection per conninfo is kept open and reused across probes (autocommit,
statement_timeout, application_name). Credentials come only from .pgpass, passfile= or the
environment: a conninfo that carries a password is refused. Every failure surfaces as a
PostgresProbeError with a one-line message naming host:port and never the password.
The SQL lives in dr_console/core/sql/, one file per probe (see load_query).
"""

from __future__ import annotations

import asyncio
import math
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row

from dr_console.models import ArchiverStats, PostgresFacts, ReplicationClient, ReplicationSlot

MIN_SERVER_VERSION_NUM = 120000

_Conn = psycopg.AsyncConnection[DictRow]


class PostgresProbeError(Exception):
    """A probe failed. The message is one line for the user; it never contains a password."""


class _PermissionDenied(PostgresProbeError):
    """The role may not read this view or function (an optional part of a probe)."""


# --- named queries ----------------------------------------------------------------------------

_VARIANT = re.compile(r"^(?P<name>[a-z_]+)\.pg(?P<major>\d+)\.sql$")


@cache
def _variants() -> dict[str, list[int]]:
    """query name -> majors that have their own file (NAME.pgNN.sql serves servers up to NN)."""
    found: dict[str, list[int]] = {}
    for entry in (resources.files("dr_console.core") / "sql").iterdir():
        match = _VARIANT.match(entry.name)
        if match:
            found.setdefault(match["name"], []).append(int(match["major"]))
    return {name: sorted(majors) for name, majors in found.items()}


@cache
def load_query(name: str, server_major: int) -> str:
    """The SQL for probe `name` on a server of major version `server_major`.

    NAME.sql serves current servers; NAME.pgNN.sql, when present, serves majors <= NN (the
    smallest such NN wins), for the views that changed shape since.
    """
    majors = [m for m in _variants().get(name, []) if server_major <= m]
    filename = f"{name}.pg{majors[0]}.sql" if majors else f"{name}.sql"
    return (resources.files("dr_console.core") / "sql" / filename).read_text(encoding="utf-8")


# --- conninfo ---------------------------------------------------------------------------------


def parse_conninfo(conninfo: str) -> dict[str, Any]:
    """Parse a libpq conninfo (key=value or URI); refuse one that is invalid or has a password."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        reason = _scrub(_first_line(str(exc)))
        raise PostgresProbeError(f"invalid PostgreSQL conninfo: {reason}") from None
    if params.get("password"):
        raise PostgresProbeError(
            f"conninfo for {_target(params)} contains a password; remove it and put the "
            "credentials in ~/.pgpass, a passfile= or PGPASSFILE"
        )
    return params


def _target(params: Mapping[str, Any]) -> str:
    """host:port (or several, comma-separated) as libpq would try them, for messages."""
    hosts = str(
        params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST") or "local socket"
    ).split(",")
    ports = str(params.get("port") or os.environ.get("PGPORT") or "5432").split(",")
    if len(ports) != len(hosts):  # libpq: one port for every host, or one per host
        ports = [ports[0]] * len(hosts)
    return ",".join(f"{host}:{port}" for host, port in zip(hosts, ports, strict=True))


# --- error messages ---------------------------------------------------------------------------

_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_URI_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_LIBPQ_PREFIX = re.compile(
    r"^(?:connection (?:failed|is bad): )?"
    r"(?:connection to server (?:at|on) [^,]*,? (?:port \d+ )?failed: )+"
)

_SEVERITY = re.compile(r"^(?:FATAL|ERROR|PANIC):\s+")


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return text.strip()


def _scrub(text: str) -> str:
    text = _PASSWORD.sub(r"\1***", text)
    return _URI_PASSWORD.sub(r"\1***@", text)


def _describe(exc: BaseException, params: Mapping[str, Any], connect_timeout: float) -> str:
    """Turn a psycopg or timeout error into 'host:port: what happened' on one line."""
    target = _target(params)
    text = str(exc)
    lowered = text.lower()
    clean = _scrub(_SEVERITY.sub("", _LIBPQ_PREFIX.sub("", _first_line(text))))
    if isinstance(exc, TimeoutError | pg_errors.ConnectionTimeout) or "timeout expired" in lowered:
        return f"{target}: connection timed out after {connect_timeout:g}s"
    if "connection refused" in lowered or (
        "on socket" in lowered and "no such file or directory" in lowered
    ):
        return f"{target}: connection refused (is PostgreSQL running and listening there?)"
    if isinstance(exc, pg_errors.InvalidPassword | pg_errors.InvalidAuthorizationSpecification) or (
        "authentication failed" in lowered or "no password supplied" in lowered
    ):
        user = params.get("user") or os.environ.get("PGUSER") or "(default user)"
        return (
            f"{target}: authentication failed for user {user} "
            "(check ~/.pgpass, passfile= or PGPASSFILE, and pg_hba.conf)"
        )
    if "shutting down" in lowered:
        return f"{target}: server is shutting down"
    if isinstance(exc, pg_errors.AdminShutdown):
        return f"{target}: the server ended the session (shutdown, restart or pg_terminate_backend)"
    if isinstance(exc, pg_errors.CannotConnectNow):
        return f"{target}: server is not accepting connections ({clean})"
    return f"{target}: {clean or type(exc).__name__}"


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


# --- the prober -------------------------------------------------------------------------------


class PostgresProber:
    """Probes PostgreSQL servers, keeping one open connection per conninfo."""

    def __init__(
        self,
        *,
        connect_timeout: float = 5.0,
        statement_timeout_ms: int = 5000,
        application_name: str = "drconsole",
    ) -> None:
        if connect_timeout <= 0:
            raise ValueError("connect_timeout must be positive")
        if statement_timeout_ms <= 0:
            raise ValueError("statement_timeout_ms must be positive")
        self._connect_timeout = connect_timeout
        self._statement_timeout_ms = statement_timeout_ms
        self._application_name = application_name
        self._conns: dict[str, _Conn] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def probe(self, conninfo: str) -> PostgresFacts:
        params = parse_conninfo(conninfo)
        lock = self._locks.setdefault(conninfo, asyncio.Lock())
        async with lock:
            conn = self._conns.get(conninfo)
            if conn is not None and not conn.closed:
                try:
                    return await self._read_facts(conn, params)
                except PostgresProbeError:
                    if not conn.closed and not conn.broken:
                        raise
                    # The pooled connection died (restart, idle kill): reconnect, once.
                    await self._discard(conninfo)
            conn = await self._connect(conninfo, params)
            self._conns[conninfo] = conn
            try:
                return await self._read_facts(conn, params)
            except PostgresProbeError:
                if conn.closed or conn.broken:
                    await self._discard(conninfo)
                raise

    async def close(self) -> None:
        for conninfo in list(self._conns):
            await self._discard(conninfo)

    async def _discard(self, conninfo: str) -> None:
        conn = self._conns.pop(conninfo, None)
        if conn is None:
            return
        try:
            async with asyncio.timeout(self._connect_timeout):
                await conn.close()
        except (TimeoutError, psycopg.Error, OSError):
            pass  # the socket is going away either way

    async def _connect(self, conninfo: str, params: Mapping[str, Any]) -> _Conn:
        options = f"-c statement_timeout={self._statement_timeout_ms}"
        if params.get("options"):
            options = f"{params['options']} {options}"
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "row_factory": dict_row,
            "options": options,
            # libpq counts whole seconds with a floor of 2; the asyncio timeout below is exact.
            "connect_timeout": max(2, math.ceil(self._connect_timeout)),
        }
        if not params.get("application_name"):
            kwargs["application_name"] = self._application_name
        try:
            async with asyncio.timeout(self._connect_timeout):
                return await psycopg.AsyncConnection.connect(conninfo, **kwargs)
        except (TimeoutError, psycopg.Error, OSError) as exc:
            raise PostgresProbeError(_describe(exc, params, self._connect_timeout)) from None

    async def _fetch(
        self, conn: _Conn, params: Mapping[str, Any], name: str, major: int
    ) -> list[DictRow]:
        # statement_timeout bounds the server; this bounds a server or network that went silent.
        limit = self._statement_timeout_ms / 1000 + self._connect_timeout
        try:
            async with asyncio.timeout(limit):
                cur = await conn.execute(load_query(name, major))
                return await cur.fetchall()
        except TimeoutError:
            await conn.close()  # a silent peer: the connection is no longer usable
            raise PostgresProbeError(
                f"{_target(params)}: no answer to the {name} query within {limit:g}s"
            ) from None
        except pg_errors.QueryCanceled as exc:
            raise PostgresProbeError(
                f"{_target(params)}: the {name} query was cancelled ({_first_line(str(exc))})"
            ) from None
        except pg_errors.InsufficientPrivilege as exc:
            raise _PermissionDenied(_describe(exc, params, self._connect_timeout)) from None
        except psycopg.Error as exc:
            raise PostgresProbeError(_describe(exc, params, self._connect_timeout)) from None

    async def _read_facts(self, conn: _Conn, params: Mapping[str, Any]) -> PostgresFacts:
        taken_at = datetime.now(UTC)
        (server,) = await self._fetch(conn, params, "server", 0)
        version_num = int(server["version_num"])
        if version_num < MIN_SERVER_VERSION_NUM:
            raise PostgresProbeError(
                f"{_target(params)}: PostgreSQL {server['version']} is not supported "
                "(drconsole needs 12 or later)"
            )
        major = version_num // 10000
        archiver = await self._archiver(conn, params, major)
        replication = await self._fetch(conn, params, "replication", major)
        slots = await self._fetch(conn, params, "slots", major)
        return PostgresFacts(
            in_recovery=bool(server["in_recovery"]),
            server_version=str(server["version"]),
            server_version_num=version_num,
            current_lsn=server["current_lsn"],
            current_wal_file=server["current_wal_file"],
            archiver=archiver,
            replication=tuple(_replication_client(row) for row in replication),
            slots=tuple(_slot(row) for row in slots),
            taken_at=taken_at,
        )

    async def _archiver(self, conn: _Conn, params: Mapping[str, Any], major: int) -> ArchiverStats:
        (row,) = await self._fetch(conn, params, "archiver", major)
        ready_count: int | None = None
        oldest_ready: str | None = None
        try:
            (ready,) = await self._fetch(conn, params, "ready_files", major)
        except _PermissionDenied:
            # Reading archive_status needs superuser or pg_monitor; without it the count is
            # unknown, not zero, and the rest of the probe still stands.
            pass
        else:
            ready_count = int(ready["ready_count"])
            oldest_ready = ready["oldest_ready"]
        return ArchiverStats(
            archived_count=int(row["archived_count"]),
            failed_count=int(row["failed_count"]),
            last_archived_wal=row["last_archived_wal"],
            last_archived_time=_utc(row["last_archived_time"]),
            last_failed_wal=row["last_failed_wal"],
            last_failed_time=_utc(row["last_failed_time"]),
            stats_reset=_utc(row["stats_reset"]),
            ready_count=ready_count,
            oldest_ready=oldest_ready,
        )


def _replication_client(row: Mapping[str, Any]) -> ReplicationClient:
    return ReplicationClient(
        application_name=row["application_name"] or "",
        state=row["state"],
        sync_state=row["sync_state"],
        sent_lsn=row["sent_lsn"],
        write_lsn=row["write_lsn"],
        flush_lsn=row["flush_lsn"],
        replay_lsn=row["replay_lsn"],
        sent_lag_bytes=row["sent_lag_bytes"],
        write_lag_bytes=row["write_lag_bytes"],
        flush_lag_bytes=row["flush_lag_bytes"],
        replay_lag_bytes=row["replay_lag_bytes"],
        write_lag_seconds=row["write_lag_seconds"],
        flush_lag_seconds=row["flush_lag_seconds"],
        replay_lag_seconds=row["replay_lag_seconds"],
        slot_name=row["slot_name"],
        client_addr=row["client_addr"],
        pid=row["pid"],
        started_at=_utc(row["backend_start"]),
    )


def _slot(row: Mapping[str, Any]) -> ReplicationSlot:
    return ReplicationSlot(
        slot_name=row["slot_name"],
        slot_type=row["slot_type"],
        active=bool(row["active"]),
        active_pid=row["active_pid"],
        restart_lsn=row["restart_lsn"],
        retained_bytes=row["retained_bytes"],
        wal_status=row["wal_status"],
    )
