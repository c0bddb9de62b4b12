"""Detached jobs on the console's own host, through the real LocalTransport and real processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dr_console.config import Config, ConsoleConfig, NodeConfig
from dr_console.core.barman_errors import BarmanLocked
from dr_console.core.jobs import JobManager, check_job_id
from dr_console.core.journal import Journal, JournalError, read_journal
from dr_console.core.transport_local import LocalTransport
from dr_console.core.validation import UnsafeValue
from dr_console.models import JobState, NodeRole

NODE = "local"


def make_config(tmp_path: Path) -> Config:
    return Config(
        console=ConsoleConfig(command_timeout=20.0, journal_dir=str(tmp_path / "journal")),
        nodes=(NodeConfig(name=NODE, role=NodeRole.PRIMARY, job_dir=str(tmp_path / "jobs")),),
    )


def make_manager(tmp_path: Path, grace: float = 10.0) -> JobManager:
    config = make_config(tmp_path)
    return JobManager(
        {NODE: LocalTransport(NODE)},
        Journal(config.console.journal_dir),
        config,
        cancel_grace=grace,
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not alive for our purpose.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


async def collect(lines: AsyncIterator[str], timeout: float = 20.0) -> list[str]:
    async def run() -> list[str]:
        return [line async for line in lines]

    return await asyncio.wait_for(run(), timeout)


async def test_job_output_streams_in_order_while_it_runs(tmp_path: Path) -> None:
    manager = make_manager(tmp_path)
    job = await manager.start(
        NODE, "pgserver", "test", ["sh", "-c", "echo a; sleep 1; echo b; exit 3"]
    )
    assert job.state is JobState.RUNNING and job.pid is not None
    check_job_id(job.job_id)
    seen: list[tuple[str, JobState]] = []

    async def follow() -> None:
        async for line in manager.tail(job):
            seen.append((line, (await manager.get(NODE, job.job_id)).state))

    await asyncio.wait_for(follow(), 20)
    assert [line for line, _ in seen] == ["a", "b"]
    assert seen[0][1] is JobState.RUNNING  # "a" arrived while the job was still running
    assert await manager.wait(job, poll=0.2, timeout=10) == 3
    done = await manager.get(NODE, job.job_id)
    assert done.state is JobState.FAILED and done.exit_status == 3
    assert done.ended_at is not None and done.elapsed(done.ended_at) is not None
    assert (Path(job.job_path) / "exit_status").read_text().strip() == "3"
    assert tuple((Path(job.job_path) / "argv").read_text().splitlines()) == job.argv
    assert oct(Path(job.job_path).stat().st_mode & 0o777) == "0o700"
    records = read_journal(manager.journal.path)
    assert len(records) == 1
    assert records[0].state == "failed" and records[0].exit_status == 3
    assert records[0].argv == job.argv and records[0].log_path == job.log_path


async def test_job_survives_the_process_that_started_it(tmp_path: Path) -> None:
    """A console that starts a job and then dies (SIGKILL) leaves the job running; a new console
    re-attaches by listing the node's job directory."""
    starter = f"""
import asyncio, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_jobs_local import make_manager
from pathlib import Path
async def main():
    m = make_manager(Path({str(tmp_path)!r}))
    job = await m.start("local", "pgserver", "backup", ["sh", "-c", "echo one; sleep 2; echo two"])
    print(job.job_id, flush=True)
    await asyncio.sleep(60)
asyncio.run(main())
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", starter],
        stdout=subprocess.PIPE,
        start_new_session=True,
        cwd=os.getcwd(),
    )
    try:
        assert proc.stdout is not None
        job_id = proc.stdout.readline().decode().strip()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    check_job_id(job_id)

    fresh = make_manager(tmp_path)
    jobs = await fresh.list(NODE)
    assert [j.job_id for j in jobs] == [job_id]
    job = jobs[0]
    assert job.state is JobState.RUNNING
    assert (job.server, job.operation) == ("pgserver", "backup")
    assert job.argv == ("sh", "-c", "echo one; sleep 2; echo two")
    assert await collect(fresh.tail(job)) == ["one", "two"]
    assert await fresh.wait(job, poll=0.2, timeout=10) == 0
    assert (await fresh.get(NODE, job_id)).state is JobState.SUCCEEDED
    events = [json.loads(line)["event"] for line in fresh.journal.path.read_text().splitlines()]
    assert events == ["started", "attached", "finished"]
    # Yet another console lists the finished job: the journal already knows it, nothing is added.
    before = fresh.journal.path.read_bytes()
    assert [j.state for j in await make_manager(tmp_path).list(NODE)] == [JobState.SUCCEEDED]
    assert fresh.journal.path.read_bytes() == before


async def test_stopping_the_tail_does_not_stop_the_job(tmp_path: Path) -> None:
    manager = make_manager(tmp_path)
    job = await manager.start(NODE, None, "test", ["sh", "-c", "echo x; sleep 1.5; echo y"])
    tail = manager.tail(job)
    assert await asyncio.wait_for(anext(tail), 10) == "x"
    await tail.aclose()  # type: ignore[attr-defined]
    assert await manager.wait(job, poll=0.2, timeout=10) == 0
    assert (Path(job.job_path) / "output.log").read_text() == "x\ny\n"


async def test_tail_from_the_end_shows_the_last_200_lines(tmp_path: Path) -> None:
    manager = make_manager(tmp_path)
    job = await manager.start(NODE, None, "test", ["seq", "1", "500"])
    await manager.wait(job, poll=0.1, timeout=10)
    lines = await collect(manager.tail(job, from_start=False))
    assert lines == [str(i) for i in range(301, 501)]
    assert await collect(manager.tail(job, from_start=True)) == [str(i) for i in range(1, 501)]


async def test_cancel_interrupts_the_command_cleanly(tmp_path: Path) -> None:
    script = (
        "import signal, sys, time; "
        "signal.signal(signal.SIGINT, lambda *_: (print('interrupted: releasing the lock', "
        "flush=True), sys.exit(1))); "
        "print('working', flush=True); time.sleep(60)"
    )
    manager = make_manager(tmp_path)
    job = await manager.start(NODE, "pgserver", "backup", [sys.executable, "-c", script])
    tail = manager.tail(job)
    assert await asyncio.wait_for(anext(tail), 10) == "working"
    started = time.monotonic()
    cancelled = await manager.cancel(job)
    assert time.monotonic() - started < 5  # SIGINT was enough, no wait for the grace period
    assert cancelled.state is JobState.CANCELLED and cancelled.exit_status == 1
    rest = await collect(tail)
    assert rest == ["interrupted: releasing the lock"]
    records = read_journal(manager.journal.path)
    assert records[0].state == "cancelled" and records[0].exit_status == 1
    # A new console sees it as cancelled too.
    assert (await make_manager(tmp_path).get(NODE, job.job_id)).state is JobState.CANCELLED


async def test_cancel_reaches_the_whole_process_group(tmp_path: Path) -> None:
    # The background sleep ignores SIGINT (as any background job of sh does): SIGTERM after the
    # grace period must still reach it, because it is in the job's process group.
    manager = make_manager(tmp_path, grace=1.0)
    job = await manager.start(
        NODE, None, "test", ["sh", "-c", "sleep 300 & echo $!; wait; echo unreachable"]
    )
    child = int(await asyncio.wait_for(anext(manager.tail(job)), 10))
    assert pid_alive(child)
    cancelled = await manager.cancel(job)
    assert cancelled.state is JobState.CANCELLED
    assert cancelled.exit_status is not None and cancelled.exit_status != 0
    for _ in range(50):
        if not pid_alive(child):
            break
        await asyncio.sleep(0.1)
    assert not pid_alive(child)
    assert "unreachable" not in (Path(job.job_path) / "output.log").read_text()


async def test_cancel_of_a_finished_job_records_it_finished(tmp_path: Path) -> None:
    manager = make_manager(tmp_path)
    job = await manager.start(NODE, None, "test", ["true"])
    await manager.wait(job, poll=0.1, timeout=10)
    assert (await manager.cancel(job)).state is JobState.SUCCEEDED
    assert read_journal(manager.journal.path)[0].state == "finished"


async def test_second_backup_of_a_server_is_refused_up_front(tmp_path: Path) -> None:
    manager = make_manager(tmp_path)
    first = await manager.start(NODE, "pgserver", "backup", ["sleep", "30"])
    try:
        with pytest.raises(BarmanLocked, match="already running"):
            await manager.start(NODE, "pgserver", "backup", ["sleep", "30"])
        other = await manager.start(NODE, "otherserver", "backup", ["true"])
        assert await manager.wait(other, poll=0.1, timeout=10) == 0
    finally:
        await manager.cancel(first)
    assert len(await manager.list(NODE)) == 2


async def test_lost_job_is_reported_lost(tmp_path: Path) -> None:
    manager = make_manager(tmp_path)
    job = await manager.start(NODE, None, "test", ["sleep", "30"])
    assert job.pid is not None
    os.killpg(job.pid, signal.SIGKILL)  # the whole job, wrapper included: nothing records an end
    for _ in range(50):
        if (await manager.get(NODE, job.job_id)).state is JobState.LOST:
            break
        await asyncio.sleep(0.1)
    assert (await manager.get(NODE, job.job_id)).state is JobState.LOST
    assert await manager.wait(job, poll=0.1, timeout=5) is None


@pytest.mark.parametrize(
    ("job_dir", "argv"),
    [
        ("relative/dir", ["true"]),
        ("/tmp/x\n/evil", ["true"]),
        (None, ["echo", "two\nlines"]),
        (None, []),
    ],
)
async def test_unsafe_values_are_refused(
    tmp_path: Path, job_dir: str | None, argv: list[str]
) -> None:
    config = make_config(tmp_path)
    if job_dir is not None:
        node = NodeConfig(name=NODE, role=NodeRole.PRIMARY, job_dir=job_dir)
        config = Config(console=config.console, nodes=(node,))
    manager = JobManager({NODE: LocalTransport(NODE)}, Journal(tmp_path / "j"), config)
    with pytest.raises(UnsafeValue):
        await manager.start(NODE, "pgserver", "test", argv)
    assert not (tmp_path / "j" / "journal.jsonl").exists()


async def test_home_relative_job_dir_is_expanded_on_the_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    node = NodeConfig(name=NODE, role=NodeRole.PRIMARY, job_dir="~/.drconsole/jobs")
    config = Config(console=ConsoleConfig(), nodes=(node,))
    manager = JobManager({NODE: LocalTransport(NODE)}, Journal(tmp_path / "j"), config)
    job = await manager.start(NODE, None, "test", ["echo", "hi"])
    assert job.job_path == str(tmp_path / "home" / ".drconsole" / "jobs" / job.job_id)
    assert await collect(manager.tail(job)) == ["hi"]


async def test_no_job_starts_when_the_journal_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("")
    config = make_config(tmp_path)
    manager = JobManager(
        {NODE: LocalTransport(NODE)}, Journal(tmp_path / "not-a-dir" / "journal"), config
    )
    with pytest.raises(JournalError, match="could not open the journal"):
        await manager.start(NODE, "pgserver", "backup", ["touch", str(tmp_path / "ran")])
    assert not (tmp_path / "jobs").exists()
    assert not (tmp_path / "ran").exists()


async def test_an_unreadable_job_record_is_skipped_and_reported_and_blocks_nothing(
    tmp_path: Path,
) -> None:
    manager = make_manager(tmp_path)
    good = await manager.start(NODE, "pgserver", "switch-wal", ["true"])
    assert await manager.wait(good, poll=0.1, timeout=10) == 0
    jobs_dir = tmp_path / "jobs"
    deep = jobs_dir / "20261201T101010Z-aaaaaa"
    deep.mkdir()
    (deep / "argv").write_text("true\n")
    (deep / "meta.json").write_text("[" * 100_000 + "]" * 100_000)
    no_time = jobs_dir / "20261201T101011Z-bbbbbb"
    no_time.mkdir()
    (no_time / "argv").write_text("true\n")
    (no_time / "meta.json").write_text(json.dumps({"operation": "backup", "server": "pgserver",
                                                   "at": 12}))  # fmt: skip
    listed = await manager.list(NODE)
    assert {j.job_id for j in listed} == {good.job_id, no_time.name}
    assert next(j for j in listed if j.job_id == no_time.name).started_at is None
    assert manager.problems[NODE] == [
        f"{NODE}: skipped the unreadable job record {deep}: nested too deeply"
    ]
    assert manager.unreported_problems(NODE) and not manager.unreported_problems(NODE)
    started = await manager.start(NODE, "pgserver", "backup", ["true"])  # not blocked
    assert await manager.wait(started, poll=0.1, timeout=10) == 0
