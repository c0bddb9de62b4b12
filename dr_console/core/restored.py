"""A restored data directory on some host, reached through a Transport: read its configuration
for the checklist, start it on a spare port with archiving off, follow its recovery, query it,
stop it and remove it. Every command has a timeout; values arrive as argv items, never as text
inside a shell script.
"""

from __future__ import annotations

import asyncio
import posixpath
import re
import shlex
import time
from dataclasses import dataclass, replace

from dr_console.core.preflight import port_free
from dr_console.core.recovery_checklist import RestoredConf, walk
from dr_console.core.transport_base import Transport, TransportError

_SAFE_PATH_RE = re.compile(r"/[A-Za-z0-9_./+-]*")
_MAX_FETCH_ROUNDS = 12
# P12: pg_get_wal_replay_pause_state() raises once recovery has ended, hence the CASE.
STATE_SQL = (
    "select pg_is_in_recovery(), "
    "case when pg_is_in_recovery() then pg_get_wal_replay_pause_state() else 'not paused' end, "
    "coalesce(pg_last_wal_replay_lsn()::text, ''), "
    "coalesce(to_char(pg_last_xact_replay_timestamp() at time zone 'UTC', "
    "'YYYY-MM-DD HH24:MI:SS.US') || '+00', ''), "
    "(select timeline_id from pg_control_checkpoint())"
)
# Errors worth polling through while the server comes up (anything else is reported at once).
_TRANSIENT = (
    "starting up",
    "not yet accepting connections",
    "shutting down",
    "No such file or directory",
    "Connection refused",
    "timeout expired",
)
_SIGNALS = r'for f; do [ -e "$f" ] && printf "%s\n" "${f##*/}"; done; exit 0'


# The restored server and every client of it run without the Barman user's libpq credentials:
# nothing in the copy may log in to the live server with its .pgpass or service file.
WITHOUT_CREDENTIALS = (
    "env", "-u", "PGPASSWORD", "-u", "PGSERVICE", "PGPASSFILE=/dev/null",
    "PGSERVICEFILE=/dev/null", "PGSYSCONFDIR=/nonexistent",
)


class RestoredError(Exception):
    """The restored instance could not be started, queried or stopped; the message says why."""


def _conninfo_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def check_safe_path(path: str, what: str) -> str:
    if not _SAFE_PATH_RE.fullmatch(path) or "/../" in path + "/" or path.rstrip("/") == "":
        raise RestoredError(f"{what} {path!r} must be an absolute path of letters, digits, _./+-")
    return path


async def read_restored_conf(transport: Transport, data_dir: str, timeout: float) -> RestoredConf:
    """Read postgresql.conf, postgresql.auto.conf and every file they include, for real."""
    check_safe_path(data_dir, "data directory")
    texts: dict[str, str | None] = {}
    listings: dict[str, list[str]] = {}
    result = await transport.run(
        [
            "sh",
            "-c",
            _SIGNALS,
            "drconsole-signals",
            posixpath.join(data_dir, "recovery.signal"),
            posixpath.join(data_dir, "standby.signal"),
        ],
        timeout=timeout,
    )
    signals = [line for line in result.stdout.splitlines() if line.endswith(".signal")]
    conf = RestoredConf(data_dir, texts, listings, signals)
    for _ in range(_MAX_FETCH_ROUNDS):
        needed = walk(conf).needed
        if not needed:
            break
        for item in dict.fromkeys(needed):
            if item.endswith("/"):
                directory = item.rstrip("/")
                out = await transport.run(["ls", "-A", "--", directory], timeout=timeout)
                listings[directory] = out.stdout.splitlines() if out.returncode == 0 else []
            else:
                out = await transport.run(["cat", "--", item], timeout=timeout)
                texts[item] = out.stdout if out.returncode == 0 else None
    return conf


@dataclass(frozen=True)
class ReplayState:
    in_recovery: bool
    pause_state: str  # not paused, pause requested, paused
    replay_lsn: str | None
    replay_time: str | None
    timeline: int | None

    @property
    def finished(self) -> bool:
        """Recovery ended (promoted) or stopped at the target waiting for a resume (P12)."""
        return not self.in_recovery or self.pause_state == "paused"


def parse_state(line: str) -> ReplayState:
    parts = line.strip().split("|")
    if len(parts) != 5 or parts[0] not in ("t", "f"):
        raise RestoredError(f"unexpected answer to the recovery state query: {line.strip()!r}")
    return ReplayState(
        in_recovery=parts[0] == "t",
        pause_state=parts[1],
        replay_lsn=parts[2] or None,
        replay_time=parts[3] or None,
        timeline=int(parts[4]) if parts[4].isdigit() else None,
    )


@dataclass(frozen=True)
class RestoredInstance:
    """How to reach one restored data directory and the server started on it."""

    transport: Transport
    bindir: str
    data_dir: str
    socket_dir: str
    port: int
    log_file: str
    hba_file: str | None = None  # replaces the restored pg_hba.conf when set
    user: str | None = None  # role to connect as (None: the OS user's name)
    read_only: bool = False  # sessions default to read-only transactions

    def __post_init__(self) -> None:
        for value, what in (
            (self.bindir, "PostgreSQL bindir"),
            (self.data_dir, "data directory"),
            (self.socket_dir, "socket directory"),
            (self.log_file, "log file"),
        ):
            check_safe_path(value, what)
        if not 1 <= self.port <= 65535:
            raise RestoredError(f"port {self.port} is not between 1 and 65535")

    def _tool(self, name: str) -> str:
        return posixpath.join(self.bindir, name)

    def conninfo(self) -> str:
        user = f" user={_conninfo_quote(self.user)}" if self.user else ""
        options = (
            " options=" + _conninfo_quote("-c default_transaction_read_only=on")
            if self.read_only else ""
        )
        return (f"host={self.socket_dir} port={self.port} dbname=postgres connect_timeout=5"
                f"{user}{options}")

    async def start(self, timeout: float) -> None:
        """pg_ctl start, listening on loopback only, archiving off (second safeguard, P10)."""
        options = " ".join(
            f"-c {shlex.quote(o)}"
            for o in (
                f"port={self.port}",
                "listen_addresses=127.0.0.1",
                f"unix_socket_directories={self.socket_dir}",
                "archive_mode=off",
                "hot_standby=on",
                "cluster_name=drconsole-restored",
                *([f"hba_file={self.hba_file}"] if self.hba_file else []),
            )
        )
        wait = max(5, int(timeout))
        argv = [
            *WITHOUT_CREDENTIALS,
            self._tool("pg_ctl"),
            "-D",
            self.data_dir,
            "-l",
            self.log_file,
            "-w",
            "-t",
            str(wait),
            "-o",
            options,
            "start",
        ]
        result = await self.transport.run(argv, timeout=wait + 15)
        if result.returncode != 0:
            raise RestoredError(
                f"the restored PostgreSQL did not start on {self.transport.name}: "
                f"{(result.stdout + result.stderr).strip()[-300:]}\n{await self.log_tail()}"
            )

    async def log_tail(self, lines: int = 8) -> str:
        try:
            result = await self.transport.run(["tail", "-n", str(lines), "--", self.log_file], 10)
        except TransportError:
            return ""
        return result.stdout.strip()

    async def query(self, sql: str, timeout: float) -> str:
        """One statement through psql on the host; its unaligned output (RestoredError if not)."""
        argv = [
            *WITHOUT_CREDENTIALS,
            self._tool("psql"),
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            self.conninfo(),
            "-c",
            sql,
        ]
        result = await self.transport.run(argv, timeout=timeout)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()
            raise RestoredError(detail or f"psql exited with {result.returncode}")
        return result.stdout.strip()

    async def state(self, timeout: float) -> ReplayState:
        return parse_state(await self.query(STATE_SQL, timeout))

    async def wait_replayed(self, timeout: float, poll: float = 0.5) -> ReplayState:
        """Poll until recovery has finished or paused at the target."""
        deadline = time.monotonic() + timeout
        last_error = ""
        while True:
            try:
                current = await self.state(timeout=min(15.0, max(1.0, timeout)))
                if current.finished:
                    return current
            except RestoredError as exc:
                last_error = str(exc)
                if not any(t in last_error for t in _TRANSIENT):
                    raise RestoredError(f"cannot query the restored server: {last_error}") from None
                if not await self.running():
                    raise RestoredError(
                        f"the restored server stopped during recovery:\n{await self.log_tail()}"
                    ) from None
            if time.monotonic() >= deadline:
                raise RestoredError(
                    f"recovery did not finish within {timeout:g} s"
                    + (f" (last error: {last_error})" if last_error else "")
                    + f"\n{await self.log_tail()}"
                )
            await asyncio.sleep(poll)

    async def running(self) -> bool:
        """pg_ctl status: exit 3 means no server runs on the data directory."""
        argv = [self._tool("pg_ctl"), "-D", self.data_dir, "status"]
        try:
            result = await self.transport.run(argv, timeout=30)
        except TransportError:
            return True  # cannot tell: keep polling until the deadline
        return result.returncode != 3

    async def stop(self, timeout: float = 60.0) -> None:
        for mode in ("fast", "immediate"):
            argv = [
                self._tool("pg_ctl"),
                "-D",
                self.data_dir,
                "-m",
                mode,
                "-w",
                "-t",
                str(int(timeout)),
                "stop",
            ]
            try:
                result = await self.transport.run(argv, timeout=timeout + 10)
            except TransportError:
                continue
            if result.returncode == 0 or "Is server running?" in result.stderr:
                return
        raise RestoredError(f"could not stop the restored PostgreSQL in {self.data_dir}")


async def start_on_a_free_port(
    instance: RestoredInstance, ports: range, timeout: float, command_timeout: float
) -> RestoredInstance:
    """Start it; if its port is taken by then, move to the next free one in `ports`.

    A port can be taken after any check: by a server started since, or by an outgoing connection
    that drew it as its ephemeral port, which no listener check sees. Only the bind tells."""
    while True:
        try:
            await instance.start(timeout=timeout)
            return instance
        except RestoredError as exc:
            if "already in use" not in str(exc):
                raise
            for port in range(instance.port + 1, ports.stop):
                if await port_free(instance.transport, port, command_timeout):
                    instance = replace(instance, port=port)
                    break
            else:
                raise RestoredError(
                    f"every port in {ports.start}-{ports.stop - 1} was taken while starting: {exc}"
                ) from None


async def remove_tree(
    transport: Transport, path: str, must_match: re.Pattern[str], timeout: float = 120.0
) -> None:
    """rm -rf a directory this module's caller created; refuses anything else."""
    check_safe_path(path, "directory to remove")
    if not must_match.fullmatch(path):
        raise RestoredError(f"refusing to remove {path!r}: not a directory drconsole created")
    result = await transport.run(["rm", "-rf", "--", path], timeout=timeout)
    if result.returncode != 0:
        raise RestoredError(f"could not remove {path}: {result.stderr.strip()}")
