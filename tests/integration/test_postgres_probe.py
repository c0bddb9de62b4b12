"""PostgreSQL probes against the lab's pgserver, compared with psql run as the lab's postgres user.

Values that move on their own (LSNs, counters) are bracketed: ground truth read just before and
just after the probe must enclose what the probe saw.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dr_console.core.postgres import PostgresProbeError, PostgresProber, parse_conninfo
from dr_console.lab.lab import Lab
from dr_console.models import PostgresFacts

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class PgTarget:
    host: str
    port: int
    conninfo: str  # the monitor role, password in a passfile
    os_user: str
    socket_dir: Path
    bindir: Path

    def psql(self, sql: str) -> str:
        """Ground truth: psql as the cluster's OS user over its local socket (peer auth)."""
        result = subprocess.run(
            ["runuser", "-u", self.os_user, "--", str(self.bindir / "psql"),
             "-h", str(self.socket_dir), "-p", str(self.port), "-d", "postgres",
             "-AtX", "-F", "|", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, text=True, timeout=30, cwd="/", check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"psql failed: {result.stderr.strip()}"
        return result.stdout.strip()

    def lsn_le(self, *lsns: str | None) -> bool:
        """lsns[0] <= lsns[1] <= … as PostgreSQL orders them."""
        assert all(lsns), lsns
        pairs = [f"'{a}'::pg_lsn <= '{b}'::pg_lsn" for a, b in itertools.pairwise(lsns)]
        return self.psql("SELECT " + " AND ".join(pairs)) == "t"

    def diff(self, a: str, b: str) -> int:
        return int(self.psql(f"SELECT pg_wal_lsn_diff('{a}', '{b}')::bigint"))


@pytest.fixture(scope="module")
def pg(lab: Lab) -> PgTarget:
    settings = lab.settings
    return PgTarget(
        host=settings.pg_address,
        port=settings.pg_port,
        conninfo=(
            f"host={settings.pg_address} port={settings.pg_port} user={settings.monitor_role} "
            f"dbname=postgres passfile={settings.console_dir / 'pgpass'}"
        ),
        os_user=settings.pg_user,
        socket_dir=settings.run_dir,
        bindir=settings.pg_bindir,
    )


@pytest.fixture
async def prober() -> AsyncIterator[PostgresProber]:
    p = PostgresProber(connect_timeout=5, statement_timeout_ms=5000)
    try:
        yield p
    finally:
        await p.close()


def _current_lsn(pg: PgTarget) -> str:
    return pg.psql("SELECT pg_current_wal_lsn()")


def _epoch(value: datetime | None) -> float:
    assert value is not None
    assert value.tzinfo is not None and value.utcoffset() == UTC.utcoffset(None)
    return value.timestamp()


async def test_server_facts_match_psql(pg: PgTarget, prober: PostgresProber) -> None:
    before = _current_lsn(pg)
    facts = await prober.probe(pg.conninfo)
    after = _current_lsn(pg)

    assert facts.in_recovery is (pg.psql("SELECT pg_is_in_recovery()") == "t")
    assert facts.server_version == pg.psql("SHOW server_version")
    assert facts.server_version_num == int(pg.psql("SHOW server_version_num"))
    assert pg.lsn_le(before, facts.current_lsn, after)
    assert facts.current_wal_file == pg.psql(f"SELECT pg_walfile_name('{facts.current_lsn}')")
    assert abs((datetime.now(UTC) - facts.taken_at).total_seconds()) < 10
    assert facts.taken_at.tzinfo is not None


RECEIVER_SQL = (
    "SELECT r.pid FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid "
    "WHERE r.application_name = 'barman_receive_wal' AND r.state = 'streaming' "
    "AND s.slot_name = 'barman'"
)


async def _bracketed_probe(
    pg: PgTarget, prober: PostgresProber, truth_sql: str
) -> tuple[list[str], PostgresFacts, list[str]]:
    """Ground truth, probe, ground truth, while one receive-wal streams through slot 'barman'.

    Other tests on the shared lab may stop receive-wal or run backups; Barman's cron (every
    15 s in the lab) restarts it. Wait for a steady receiver, and retry if it changed meanwhile.
    """
    deadline = time.monotonic() + 120
    while True:
        receiver = pg.psql(RECEIVER_SQL)
        if receiver:
            before = pg.psql(truth_sql).split("|")
            facts = await prober.probe(pg.conninfo)
            after = pg.psql(truth_sql).split("|")
            if pg.psql(RECEIVER_SQL) == receiver and before != [""] and after != [""]:
                return before, facts, after
        assert time.monotonic() < deadline, "barman receive-wal never streamed steadily"
        await asyncio.sleep(1)


async def test_barman_receive_wal_is_seen_with_its_slot_and_lag(
    pg: PgTarget, prober: PostgresProber
) -> None:
    truth_sql = (
        "SELECT r.pid, host(r.client_addr), r.state, r.sync_state, "
        "extract(epoch FROM r.backend_start), r.sent_lsn, s.slot_name, pg_current_wal_lsn() "
        "FROM pg_stat_replication r LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid "
        "WHERE r.application_name = 'barman_receive_wal'"
    )
    before, facts, after = await _bracketed_probe(pg, prober, truth_sql)

    rows = [r for r in facts.replication if r.application_name == "barman_receive_wal"]
    assert len(rows) == 1, facts.replication
    row = rows[0]
    pid, addr, state, sync_state, started, _, slot, _ = after
    assert row.pid == int(pid)
    assert row.client_addr == addr
    assert row.state == state == "streaming"
    assert row.sync_state == sync_state
    assert row.slot_name == slot == "barman"
    assert row.started_at is not None and abs(_epoch(row.started_at) - float(started)) < 1e-3
    assert pg.lsn_le(before[5], row.sent_lsn, after[5])
    # Lag is measured from the server's WAL position at the time of the replication query,
    # which lies between the probe's own current_lsn and psql's read after the probe.
    for lsn, lag in (
        (row.sent_lsn, row.sent_lag_bytes),
        (row.write_lsn, row.write_lag_bytes),
        (row.flush_lsn, row.flush_lag_bytes),
    ):
        assert lsn is not None and lag is not None and facts.current_lsn is not None
        assert pg.diff(facts.current_lsn, lsn) <= lag <= pg.diff(after[7], lsn)
    # pg_receivewal does not replay: no replay LSN, so no replay lag in bytes.
    assert row.replay_lsn is None and row.replay_lag_bytes is None
    for seconds in (row.write_lag_seconds, row.flush_lag_seconds, row.replay_lag_seconds):
        assert seconds is None or seconds >= 0


async def test_barman_slot_is_active_and_retains_what_psql_says(
    pg: PgTarget, prober: PostgresProber
) -> None:
    truth_sql = (
        "SELECT slot_type, active, active_pid, restart_lsn, wal_status, pg_current_wal_lsn() "
        "FROM pg_replication_slots WHERE slot_name = 'barman'"
    )
    before, facts, after = await _bracketed_probe(pg, prober, truth_sql)

    slots = {s.slot_name: s for s in facts.slots}
    assert set(slots) == set(pg.psql("SELECT slot_name FROM pg_replication_slots").split())
    slot = slots["barman"]
    slot_type, active, active_pid, _, wal_status, now_lsn = after
    assert slot.slot_type == slot_type == "physical"
    assert slot.active is (active == "t") is True
    assert slot.active_pid == int(active_pid)
    assert slot.wal_status == wal_status
    assert pg.lsn_le(before[3], slot.restart_lsn, after[3])
    assert slot.restart_lsn is not None and slot.retained_bytes is not None
    assert facts.current_lsn is not None
    assert (
        pg.diff(facts.current_lsn, slot.restart_lsn)
        <= slot.retained_bytes
        <= pg.diff(now_lsn, slot.restart_lsn)
    )


async def test_archived_count_moves_after_a_wal_switch(
    pg: PgTarget, prober: PostgresProber
) -> None:
    first = await prober.probe(pg.conninfo)
    assert first.archiver is not None
    pg.psql("CHECKPOINT")  # so that the switch below has something to close
    switched = pg.psql("SELECT pg_walfile_name(pg_switch_wal())")

    deadline = time.monotonic() + 90
    facts: PostgresFacts = first
    while True:
        facts = await prober.probe(pg.conninfo)
        assert facts.archiver is not None
        last = facts.archiver.last_archived_wal or ""
        if facts.archiver.archived_count > first.archiver.archived_count and last[:24] >= switched:
            break
        assert time.monotonic() < deadline, f"{switched} was not archived within 90 s"
        await asyncio.sleep(0.5)

    truth = pg.psql(
        "SELECT archived_count, last_archived_wal, extract(epoch FROM last_archived_time), "
        "failed_count, coalesce(last_failed_wal, ''), "
        "coalesce(extract(epoch FROM last_failed_time)::text, ''), "
        "extract(epoch FROM stats_reset) FROM pg_stat_archiver"
    ).split("|")
    archiver = facts.archiver
    assert archiver is not None
    assert archiver.archived_count <= int(truth[0])
    if archiver.archived_count == int(truth[0]):
        assert archiver.last_archived_wal == truth[1]
        assert abs(_epoch(archiver.last_archived_time) - float(truth[2])) < 1e-3
    assert archiver.failed_count == int(truth[3])
    assert (archiver.last_failed_wal or "") == truth[4]
    if truth[5]:
        assert abs(_epoch(archiver.last_failed_time) - float(truth[5])) < 1e-3
    else:
        assert archiver.last_failed_time is None
    assert abs(_epoch(archiver.stats_reset) - float(truth[6])) < 1e-3


async def test_ready_files_match_archive_status(pg: PgTarget, prober: PostgresProber) -> None:
    truth_sql = (
        "SELECT count(*), coalesce(min(left(name, -6)), '') FROM pg_ls_archive_statusdir() "
        "WHERE name LIKE '%.ready'"
    )
    seen = []
    for _ in range(10):  # a .ready file can come and go between two reads; agree once
        facts = await prober.probe(pg.conninfo)
        assert facts.archiver is not None
        assert facts.archiver.ready_count is not None, "the monitor role cannot read archive_status"
        count, oldest = pg.psql(truth_sql).split("|")
        seen.append((facts.archiver.ready_count, facts.archiver.oldest_ready, count, oldest))
        probed = (facts.archiver.ready_count, facts.archiver.oldest_ready or "")
        if probed == (int(count), oldest):
            return
        await asyncio.sleep(0.3)
    pytest.fail(f"probe and psql never agreed on .ready files: {seen}")


async def test_one_pooled_session_reused_and_replaced_after_termination(pg: PgTarget) -> None:
    app = f"drconsole_test_{secrets.token_hex(4)}"
    backends_sql = f"SELECT pid FROM pg_stat_activity WHERE application_name = '{app}'"
    prober = PostgresProber(connect_timeout=5, application_name=app)
    try:
        await prober.probe(pg.conninfo)
        first = pg.psql(backends_sql).split()
        await prober.probe(pg.conninfo)
        assert pg.psql(backends_sql).split() == first
        assert len(first) == 1

        pg.psql(f"SELECT pg_terminate_backend({first[0]}, 5000)")
        facts = await prober.probe(pg.conninfo)  # reconnects once, quietly
        assert facts.archiver is not None
        second = pg.psql(backends_sql).split()
        assert len(second) == 1 and second != first
    finally:
        await prober.close()
    assert pg.psql(backends_sql) == ""  # close() really closes


async def test_conninfo_with_password_is_refused(pg: PgTarget, prober: PostgresProber) -> None:
    with pytest.raises(PostgresProbeError) as caught:
        await prober.probe(pg.conninfo + " password=hunter2-secret")
    assert "hunter2" not in str(caught.value)
    assert str(caught.value).startswith(f"conninfo for {pg.host}:{pg.port} contains a password")


async def test_missing_password_is_an_authentication_error(
    pg: PgTarget, prober: PostgresProber
) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".pgpass") as empty:
        conninfo = pg.conninfo.rsplit(" passfile=", 1)[0] + f" passfile={empty.name}"
        with pytest.raises(PostgresProbeError) as caught:
            await prober.probe(conninfo)
    user = parse_conninfo(pg.conninfo)["user"]
    assert str(caught.value) == (
        f"{pg.host}:{pg.port}: authentication failed for user {user} "
        "(check ~/.pgpass, passfile= or PGPASSFILE, and pg_hba.conf)"
    )


async def test_wrong_port_is_connection_refused(pg: PgTarget, prober: PostgresProber) -> None:
    with socket.socket() as s:  # a port on the lab address that nothing listens on
        s.bind((pg.host, 0))
        port = s.getsockname()[1]
    conninfo = pg.conninfo.replace(f"port={pg.port}", f"port={port}")
    started = time.monotonic()
    with pytest.raises(PostgresProbeError) as caught:
        await prober.probe(conninfo)
    assert time.monotonic() - started < 2
    assert str(caught.value) == (
        f"{pg.host}:{port}: connection refused (is PostgreSQL running and listening there?)"
    )


async def test_silent_server_times_out_cleanly(pg: PgTarget) -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def never_answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    prober = PostgresProber(connect_timeout=1.5)
    try:
        conninfo = pg.conninfo.replace(f"host={pg.host}", "host=127.0.0.1").replace(
            f"port={pg.port}", f"port={port}"
        )
        started = time.monotonic()
        with pytest.raises(PostgresProbeError) as caught:
            await prober.probe(conninfo)
        elapsed = time.monotonic() - started
    finally:
        await prober.close()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
    assert accepted, "the prober never reached the silent server"
    assert str(caught.value) == f"127.0.0.1:{port}: connection timed out after 1.5s"
    assert 1.4 <= elapsed < 3.5
