"""PostgreSQL probes against a private throwaway cluster (and a standby of it).

The cases here would disturb the shared lab: a role without pg_monitor, a locked statistics view,
a standby, a server shutting down. The cluster is initdb'd as the `postgres` OS user under /tmp,
listens on 127.0.0.1 only, and is removed at the end of the module.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from dr_console.core.postgres import PostgresProbeError, PostgresProber

pytestmark = pytest.mark.integration

PG_BIN = Path("/usr/lib/postgresql/15/bin")
OS_USER = "postgres"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _as_postgres(*argv: str, timeout: float = 60) -> str:
    result = subprocess.run(
        ["runuser", "-u", OS_USER, "--", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/",
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"{argv[0]} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


@dataclass
class Scratch:
    root: Path
    port: int
    standby_port: int

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    def conninfo(self, user: str, port: int | None = None, **extra: str) -> str:
        parts = [
            "host=127.0.0.1",
            f"port={port or self.port}",
            f"user={user}",
            "dbname=postgres",
            f"passfile={self.root / 'pgpass'}",
            *(f"{k}={v}" for k, v in extra.items()),
        ]
        return " ".join(parts)

    def psql(self, sql: str, port: int | None = None) -> str:
        """Ground truth: psql as the postgres OS user over the local socket."""
        out = _as_postgres(
            str(PG_BIN / "psql"), "-h", str(self.run_dir), "-p", str(port or self.port),
            "-d", "postgres", "-AtX", "-v", "ON_ERROR_STOP=1", "-c", sql, timeout=30,
        )  # fmt: skip
        return out.strip()

    def superuser(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=str(self.run_dir), port=self.port, user=OS_USER, dbname="postgres",
            connect_timeout=5,
        )  # fmt: skip

    def pg_ctl(self, *args: str, data: str = "data") -> None:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.root / data), *args)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Scratch]:
    if os.geteuid() != 0:
        pytest.fail("the scratch cluster tests run as root (they initdb as the postgres user)")
    pw = pwd.getpwnam(OS_USER)
    root = Path(tempfile.mkdtemp(prefix="drconsole-pgprobe-", dir="/tmp"))
    cluster = Scratch(root=root, port=_free_port(), standby_port=_free_port())
    started: list[str] = []
    try:
        os.chown(root, pw.pw_uid, pw.pw_gid)
        (root / "run").mkdir()
        os.chown(root / "run", pw.pw_uid, pw.pw_gid)
        pwfile = root / "superuser.pw"
        pwfile.write_text(secrets.token_hex(16) + "\n")
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        pwfile.chmod(0o600)
        _as_postgres(
            str(PG_BIN / "initdb"), "-D", str(root / "data"), "-U", OS_USER,
            "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
        )  # fmt: skip
        with (root / "data" / "postgresql.conf").open("a") as conf:
            conf.write(
                "listen_addresses = '127.0.0.1'\n"
                f"port = {cluster.port}\n"
                f"unix_socket_directories = '{root / 'run'}'\n"
                "archive_mode = on\n"
                "archive_command = '/bin/true'\n"
            )
        cluster.pg_ctl("-l", str(root / "primary.log"), "-w", "-t", "30", "start")
        started.append("data")
        mon_pw, plain_pw = secrets.token_hex(12), secrets.token_hex(12)
        cluster.psql(
            f"CREATE ROLE mon LOGIN PASSWORD '{mon_pw}' IN ROLE pg_monitor;"
            f"CREATE ROLE plain LOGIN PASSWORD '{plain_pw}';"
        )
        passfile = root / "pgpass"
        passfile.write_text(f"127.0.0.1:*:*:mon:{mon_pw}\n127.0.0.1:*:*:plain:{plain_pw}\n")
        passfile.chmod(0o600)

        _as_postgres(
            str(PG_BIN / "pg_basebackup"), "-D", str(root / "standby"), "-R", "-X", "stream",
            "-d", f"host={root / 'run'} port={cluster.port} user={OS_USER} "
            "application_name=scratch_standby",
        )  # fmt: skip
        with (root / "standby" / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {cluster.standby_port}\n")
        cluster.pg_ctl("-l", str(root / "standby.log"), "-w", "-t", "30", "start", data="standby")
        started.append("standby")
        yield cluster
    finally:
        for data in reversed(started):
            subprocess.run(
                ["runuser", "-u", OS_USER, "--", str(PG_BIN / "pg_ctl"), "-D", str(root / data),
                 "-m", "immediate", "-w", "-t", "30", "stop"],
                capture_output=True, timeout=60, cwd="/", check=False,
            )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


async def test_a_role_without_pg_monitor_gets_unknowns_not_a_failure(scratch: Scratch) -> None:
    prober = PostgresProber(connect_timeout=5)
    try:
        facts = await prober.probe(scratch.conninfo("plain"))
        monitored = await prober.probe(scratch.conninfo("mon"))
    finally:
        await prober.close()
    assert facts.archiver is not None
    assert facts.archiver.ready_count is None  # pg_ls_archive_statusdir: permission denied
    assert facts.archiver.archived_count == int(
        scratch.psql("SELECT archived_count FROM pg_stat_archiver")
    )
    # pg_stat_replication hides the details of other roles' sessions: unknown, not zero.
    (standby,) = facts.replication
    assert standby.application_name == "scratch_standby"
    assert standby.sent_lsn is None and standby.sent_lag_bytes is None
    # The same server read by a pg_monitor member shows the count and the LSNs.
    assert monitored.archiver is not None
    assert monitored.archiver.ready_count == int(
        scratch.psql("SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'")
    )
    assert monitored.replication[0].sent_lsn is not None


async def test_statement_timeout_cancels_a_blocked_probe_and_the_connection_survives(
    scratch: Scratch,
) -> None:
    prober = PostgresProber(connect_timeout=5, statement_timeout_ms=300)
    conninfo = scratch.conninfo("mon", application_name="drconsole_st_test")
    try:
        await prober.probe(conninfo)
        with scratch.superuser() as su:
            su.execute("LOCK TABLE pg_catalog.pg_stat_archiver IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            with pytest.raises(PostgresProbeError) as caught:
                await prober.probe(conninfo)
            elapsed = time.monotonic() - started
            su.rollback()
        assert str(caught.value) == (
            f"127.0.0.1:{scratch.port}: the archiver query was cancelled "
            "(canceling statement due to statement timeout)"
        )
        assert elapsed < 3
        facts = await prober.probe(conninfo)
        assert facts.archiver is not None
        # Still the one pooled session: a cancelled statement does not cost a reconnect.
        assert (
            scratch.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'drconsole_st_test'"
            )
            == "1"
        )
    finally:
        await prober.close()


async def test_standby_reports_recovery_and_received_lsn(scratch: Scratch) -> None:
    prober = PostgresProber(connect_timeout=5)
    conninfo = scratch.conninfo("mon", port=scratch.standby_port)
    try:
        before = scratch.psql("SELECT pg_last_wal_receive_lsn()", port=scratch.standby_port)
        facts = await prober.probe(conninfo)
        after = scratch.psql("SELECT pg_last_wal_receive_lsn()", port=scratch.standby_port)
        primary = await prober.probe(scratch.conninfo("mon"))
    finally:
        await prober.close()
    assert facts.in_recovery is True
    assert facts.current_wal_file is None
    assert facts.current_lsn is not None
    assert (
        scratch.psql(
            f"SELECT '{before}'::pg_lsn <= '{facts.current_lsn}'::pg_lsn "
            f"AND '{facts.current_lsn}'::pg_lsn <= '{after}'::pg_lsn",
            port=scratch.standby_port,
        )
        == "t"
    )
    assert primary.in_recovery is False
    (row,) = [r for r in primary.replication if r.application_name == "scratch_standby"]
    assert row.state == "streaming"
    assert row.sent_lag_bytes is not None and row.sent_lag_bytes >= 0
    assert row.slot_name is None  # pg_basebackup -R without -S: no slot


async def test_a_failing_archive_command_shows_failures_and_waiting_files(
    scratch: Scratch,
) -> None:
    prober = PostgresProber(connect_timeout=5)
    conninfo = scratch.conninfo("mon")
    scratch.psql("ALTER SYSTEM SET archive_command = 'false'")
    scratch.psql("SELECT pg_reload_conf()")
    try:
        scratch.psql("CREATE TABLE IF NOT EXISTS filler AS SELECT 1 AS x")
        stuck = scratch.psql("SELECT pg_walfile_name(pg_switch_wal())")
        deadline = time.monotonic() + 30
        while True:
            facts = await prober.probe(conninfo)
            archiver = facts.archiver
            assert archiver is not None
            if archiver.failed_count > 0 and archiver.last_failed_wal == stuck:
                break
            assert time.monotonic() < deadline, f"no archive failure seen for {stuck}"
            await asyncio.sleep(0.3)
        assert archiver.ready_count is not None and archiver.ready_count >= 1
        assert archiver.oldest_ready == stuck
        assert archiver.last_failed_time is not None
        assert archiver.last_failed_time.utcoffset() is not None
        assert (
            abs(
                archiver.last_failed_time.timestamp()
                - float(
                    scratch.psql(
                        "SELECT extract(epoch FROM last_failed_time) FROM pg_stat_archiver"
                    )
                )
            )
            < 5  # the archiver retries every second; allow a few retries between the two reads
        )
    finally:
        scratch.psql("ALTER SYSTEM RESET archive_command")
        scratch.psql("SELECT pg_reload_conf()")
        await prober.close()


async def test_shutdown_then_refused_then_back(scratch: Scratch) -> None:
    prober = PostgresProber(connect_timeout=3)
    conninfo = scratch.conninfo("mon")
    target = f"127.0.0.1:{scratch.port}"
    try:
        await prober.probe(conninfo)  # a pooled session now exists
        with scratch.superuser():
            # A smart shutdown waits for sessions to end and refuses new ones meanwhile.
            scratch.pg_ctl("-m", "smart", "-W", "stop")
            fresh = PostgresProber(connect_timeout=3)
            message = ""
            try:
                deadline = time.monotonic() + 10
                while "shutting down" not in message and time.monotonic() < deadline:
                    try:
                        await fresh.probe(conninfo)
                    except PostgresProbeError as exc:
                        message = str(exc)
                    await asyncio.sleep(0.1)
            finally:
                await fresh.close()
            assert message == f"{target}: server is shutting down"
            # A fast shutdown ends every session, the prober's pooled one included.
            scratch.pg_ctl("-m", "fast", "-w", "-t", "30", "stop")
        with pytest.raises(PostgresProbeError) as caught:
            await prober.probe(conninfo)
        assert str(caught.value) == (
            f"{target}: connection refused (is PostgreSQL running and listening there?)"
        )
        scratch.pg_ctl("-l", str(scratch.root / "primary.log"), "-w", "-t", "30", "start")
        facts = await prober.probe(conninfo)  # the same prober recovers on its own
        assert facts.in_recovery is False
    finally:
        await prober.close()
