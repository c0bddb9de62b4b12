"""Detached Barman jobs on the lab's bserver, over the real ssh transport.

Each test waits until no other backup of pgserver runs (other tests share the lab), so that what
it sees is its own job.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dr_console.config import Config, load_config
from dr_console.core.barman import BarmanClient, RecoverSpec
from dr_console.core.barman_errors import BarmanLocked
from dr_console.core.jobs import JobManager
from dr_console.core.journal import Journal, read_journal
from dr_console.core.transport import Transport, open_transport
from dr_console.core.transport_ssh import SshTransport
from dr_console.lab.settings import LabSettings
from dr_console.models import Job, JobState

pytestmark = pytest.mark.integration

READY_FILE = Path("/tmp/drlab-ready")
LAB_WAIT_SECONDS = 900
NODE = "bserver"
SERVER = "pgserver"
BACKUP_TIMEOUT = 180.0
_BACKUP_DIR_RE = re.compile(r"Starting backup using \S+ method for server \S+ in \S+/(\d{8}T\d{6})")


@dataclass
class Lab:
    config: Config
    settings: LabSettings
    journal_dir: Path


@pytest.fixture(scope="module")
def lab_setup(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Lab:
    try:
        lab = request.getfixturevalue("lab")
    except pytest.FixtureLookupError:
        lab = None  # no shared fixture: wait for a lab someone else brings up
        deadline = time.monotonic() + LAB_WAIT_SECONDS
        while not READY_FILE.exists():
            if time.monotonic() > deadline:
                pytest.fail(f"the lab is not up: {READY_FILE} did not appear")
            time.sleep(2)
    settings = getattr(lab, "settings", None)
    if not isinstance(settings, LabSettings):
        settings = LabSettings()
    config = load_config(settings.base_dir / "drconsole.toml")
    return Lab(config, settings, tmp_path_factory.mktemp("journal"))


@dataclass
class Console:
    """What one drconsole process holds: a transport to bserver, a job manager, a Barman client."""

    transport: Transport
    jobs: JobManager
    barman: BarmanClient


@pytest.fixture
async def console(lab_setup: Lab) -> AsyncIterator[Console]:
    c = _console(lab_setup)
    await _wait_no_backup(c)
    try:
        yield c
    finally:
        await c.transport.close()


def _console(lab: Lab) -> Console:
    node = lab.config.node(NODE)
    transport = open_transport(node, connect_timeout=10)
    jobs = JobManager({NODE: transport}, Journal(lab.journal_dir), lab.config, cancel_grace=20)
    barman = BarmanClient(transport, barman=node.barman, config_file=node.barman_config)
    return Console(transport, jobs, barman)


async def _backups_running(c: Console) -> list[int]:
    procs = (await c.barman.list_processes([SERVER])).get(SERVER, ())
    return [p.pid for p in procs if p.name == "backup"]


async def _wait_no_backup(c: Console, timeout: float = BACKUP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while await _backups_running(c):
        if time.monotonic() > deadline:
            pytest.fail(f"another backup of {SERVER} kept running for {timeout:g}s")
        await asyncio.sleep(1)


async def _start_backup(c: Console) -> Job:
    argv = c.barman.backup_argv(SERVER, wait=True, immediate_checkpoint=True)
    return await c.jobs.start(NODE, SERVER, "backup", argv)


async def _start_own_backup(c: Console, attempts: int = 5) -> tuple[Job, AsyncIterator[str], str]:
    """Start a backup that really runs: other tests share the lab and may take Barman's lock
    between our check and our start, so a refusal caused by them is retried."""
    for _ in range(attempts):
        await _wait_no_backup(c)
        try:
            job = await _start_backup(c)
        except BarmanLocked:
            continue
        tail = c.jobs.tail(job)
        async with asyncio.timeout(60):
            first = await anext(tail)
        if first.startswith("Starting backup using"):
            return job, tail, first
        assert "Another backup process is running" in first, first
        async with asyncio.timeout(30):
            _ = [line async for line in tail]
    pytest.fail(f"could not start a backup of {SERVER} in {attempts} attempts: the lab is busy")


async def _until_line(tail: AsyncIterator[str], what: str, seen: list[str]) -> str:
    async with asyncio.timeout(60):
        async for line in tail:
            seen.append(line)
            if what in line:
                return line
    pytest.fail(f"the job ended before printing {what!r}; it printed: {seen}")


async def test_backup_job_streams_its_output_while_running_and_ends_done(
    console: Console, lab_setup: Lab
) -> None:
    job, tail, first = await _start_own_backup(console)
    received: list[tuple[str, JobState, str | None]] = [
        (first, (await console.jobs.get(NODE, job.job_id)).state, None)
    ]
    async with asyncio.timeout(BACKUP_TIMEOUT):
        async for line in tail:
            state = (await console.jobs.get(NODE, job.job_id)).state
            received.append((line, state, console.jobs.progress(job).phase))
    lines = [line for line, _, _ in received]
    assert lines[0].startswith("Starting backup using")
    assert received[0][1] is JobState.RUNNING  # the first line arrived while Barman was running
    phases = [phase for _, _, phase in received]
    assert any(p and p.startswith("copying files") for p in phases)
    assert any(p and p.startswith("backup completed") for p in phases)
    assert await console.jobs.wait(job, poll=0.5, timeout=60) == 0
    done = await console.jobs.get(NODE, job.job_id)
    assert done.state is JobState.SUCCEEDED
    # The log on the node is exactly what was streamed.
    log = await console.transport.run(["cat", done.log_path], timeout=10)
    assert log.stdout.splitlines() == lines
    m = _BACKUP_DIR_RE.search(lines[0])
    assert m is not None
    backups = {b.backup_id: b for b in (await console.barman.list_backups([SERVER]))[SERVER]}
    assert backups[m.group(1)].status == "DONE"
    record = {r.job_id: r for r in read_journal(lab_setup.journal_dir / "journal.jsonl")}[
        job.job_id
    ]
    assert record.state == "finished" and record.argv == job.argv and record.node == NODE


async def test_second_backup_is_refused_with_barmans_lock_as_reason(
    console: Console, lab_setup: Lab
) -> None:
    first, _, _ = await _start_own_backup(console)
    try:
        # Another console (nothing shared but the node) is refused up front.
        other = _console(lab_setup)
        try:
            with pytest.raises(BarmanLocked, match="lock"):
                await _start_backup(other)
        finally:
            await other.transport.close()
        # Without the pre-flight check (no server given), Barman itself refuses, and says why.
        raw = await console.jobs.start(
            NODE, None, "backup", console.barman.backup_argv(SERVER, immediate_checkpoint=True)
        )
        assert await console.jobs.wait(raw, poll=0.5, timeout=60) == 1
        async with asyncio.timeout(30):
            output = [line async for line in console.jobs.tail(raw)]
        assert "ERROR: Another backup process is running" in output
        assert console.jobs.progress(raw).phase == "error: Another backup process is running"
    finally:
        assert await console.jobs.wait(first, poll=0.5, timeout=BACKUP_TIMEOUT) == 0


async def test_cancel_releases_barmans_lock(console: Console) -> None:
    job, tail, first = await _start_own_backup(console)
    started = _BACKUP_DIR_RE.search(first)
    assert started is not None, first
    await _until_line(tail, "Starting backup copy", [])
    assert await _backups_running(console)
    cancelled = await console.jobs.cancel(job)
    assert cancelled.state is JobState.CANCELLED
    assert cancelled.exit_status not in (None, 0)
    assert await _backups_running(console) == []
    async with asyncio.timeout(30):
        rest = [line async for line in tail]  # the tail ends with the job
    assert rest is not None
    # The lock is free: a new backup starts and completes.
    again, again_tail, _ = await _start_own_backup(console)
    await _until_line(again_tail, "Backup completed", [])
    assert await console.jobs.wait(again, poll=0.5, timeout=BACKUP_TIMEOUT) == 0
    # Leave the catalogue as we found it: the cancelled backup is FAILED, which would turn
    # Barman's failed_backups check CRITICAL for every test after this one.
    delete = console.barman.delete_argv(SERVER, started.group(1))
    result = await console.transport.run(delete, 120)
    assert result.returncode == 0, result.stdout + result.stderr


def _sshd_pids_serving(local_port: int, sshd_port: int) -> list[int]:
    """The sshd processes holding the server side of OUR connection (and no one else's)."""
    where = f"( sport = :{sshd_port} and dport = :{local_port} )"
    out = subprocess.run(
        ["ss", "-Htnp", "state", "established", where],
        capture_output=True, text=True, timeout=10, check=True,
    ).stdout  # fmt: skip
    return sorted({int(p) for p in re.findall(r"pid=(\d+)", out)})


async def test_job_survives_the_ssh_connection_dropping(console: Console, lab_setup: Lab) -> None:
    transport = console.transport
    assert isinstance(transport, SshTransport)
    job, tail, first = await _start_own_backup(console)
    streamed = [first]
    conn = transport._conn  # the pooled connection the tail is using
    assert conn is not None
    local_port = conn.get_extra_info("sockname")[1]
    pids = _sshd_pids_serving(local_port, lab_setup.settings.ssh_port)
    assert pids, "could not find the sshd serving this test's connection"
    connects_before = transport.connects
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    async with asyncio.timeout(BACKUP_TIMEOUT):
        async for line in tail:  # resumes on a new connection after the next line
            streamed.append(line)
    assert transport.connects > connects_before  # it really reconnected
    assert await console.jobs.wait(job, poll=0.5, timeout=60) == 0
    done = await console.jobs.get(NODE, job.job_id)
    assert done.state is JobState.SUCCEEDED
    log = await transport.run(["cat", done.log_path], timeout=10)
    assert streamed == log.stdout.splitlines()  # nothing lost, nothing twice
    assert any(line.startswith("Backup completed") for line in streamed)


async def test_recover_job_survives_the_ssh_connection_dropping(
    console: Console, lab_setup: Lab
) -> None:
    """barman recover runs as a detached job too: killing the console's ssh session mid-way
    neither stops it nor loses its output, and the restored directory is complete."""
    transport = console.transport
    assert isinstance(transport, SshTransport)
    home = (await transport.run(["sh", "-c", 'printf %s "$HOME"'], timeout=10)).stdout
    dest = f"{home}/drop-test-{uuid.uuid4().hex[:8]}"
    argv = console.barman.recover_argv(
        RecoverSpec(server=SERVER, backup_id="latest", destination=dest, get_wal=True)
    )
    job = await console.jobs.start(NODE, SERVER, "recover", argv)
    try:
        tail = console.jobs.tail(job)
        async with asyncio.timeout(60):
            streamed = [await anext(tail)]
        conn = transport._conn
        assert conn is not None
        pids = _sshd_pids_serving(conn.get_extra_info("sockname")[1], lab_setup.settings.ssh_port)
        assert pids, "could not find the sshd serving this test's connection"
        connects_before = transport.connects
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        async with asyncio.timeout(BACKUP_TIMEOUT):
            async for line in tail:  # resumes on a new connection
                streamed.append(line)
        assert transport.connects > connects_before
        assert await console.jobs.wait(job, poll=0.5, timeout=60) == 0
        done = await console.jobs.get(NODE, job.job_id)
        assert done.state is JobState.SUCCEEDED
        log = await transport.run(["cat", done.log_path], timeout=10)
        assert streamed == log.stdout.splitlines()  # nothing lost, nothing twice
        assert any("successfully prepared for recovery" in line for line in streamed), streamed
        restored = await transport.run(["test", "-s", f"{dest}/PG_VERSION"], timeout=10)
        assert restored.returncode == 0
    finally:
        await transport.run(["rm", "-rf", "--", dest], timeout=60)


async def test_switch_wal_job_shows_the_closed_wal_arriving(console: Console) -> None:
    argv = console.barman.switch_wal_argv(SERVER, force=True, archive=True, archive_timeout=60)
    job = await console.jobs.start(NODE, SERVER, "switch-wal", argv)
    async with asyncio.timeout(120):
        lines = [line async for line in console.jobs.tail(job)]
    assert await console.jobs.wait(job, poll=0.5, timeout=30) == 0
    progress = console.jobs.progress(job)
    assert progress.closed_wal is not None
    assert f"The WAL file {progress.closed_wal} has been closed on server '{SERVER}'" in lines
    # exit 0 with --archive means Barman saw it arrive; the node's catalogue agrees.
    status = (await console.barman.status([SERVER]))[SERVER]
    assert status.last_archived_wal is not None
    assert status.last_archived_wal[:24] >= progress.closed_wal
    if progress.closed_wal_arrived:  # switch-wal archived it itself (not the cron's archiver)
        assert progress.phase == f"WAL {progress.closed_wal} closed and archived"
    assert (await console.jobs.get(NODE, job.job_id)).phase == progress.phase
