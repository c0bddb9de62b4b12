"""The job log screen follows a real detached job (LocalTransport) while it runs."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from textual.app import App

from dr_console.config import Config, ConsoleConfig, NodeConfig
from dr_console.core.jobs import JobManager
from dr_console.core.journal import Journal
from dr_console.core.transport_local import LocalTransport
from dr_console.models import JobState, NodeRole
from dr_console.tui.screens.job_log import JobLogScreen
from dr_console.tui.widgets.job_log import JobLog


def _manager(tmp_path: Path) -> JobManager:
    config = Config(
        console=ConsoleConfig(journal_dir=str(tmp_path / "journal")),
        nodes=(NodeConfig(name="local", role=NodeRole.PRIMARY, job_dir=str(tmp_path / "jobs")),),
    )
    return JobManager({"local": LocalTransport("local")}, Journal(tmp_path / "journal"), config)


async def _until(condition: object, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.05)


async def test_lines_appear_while_the_job_runs_and_the_header_says_how_it_ended(
    tmp_path: Path,
) -> None:
    manager = _manager(tmp_path)
    job = await manager.start(
        "local", None, "test", ["sh", "-c", "echo first; sleep 2; echo second; exit 4"]
    )
    app: App[None] = App()
    async with app.run_test(size=(100, 24)) as pilot:
        await app.push_screen(JobLogScreen(manager, job, from_start=True))
        log = app.screen.query_one(JobLog)
        await _until(lambda: log.line_count >= 1)
        assert list(log.lines) == ["first"]
        assert (await manager.get("local", job.job_id)).state is JobState.RUNNING
        await _until(lambda: log.ended and log.line_count == 2)
        assert list(log.lines) == ["first", "second"]
        header = app.screen.query_one("#job-header")
        await _until(lambda: "FAILED (exit 4)" in str(header.render()))
        await pilot.press("escape")
        assert not isinstance(app.screen, JobLogScreen)


async def test_a_fast_job_is_bounded_by_max_lines(tmp_path: Path) -> None:
    manager = _manager(tmp_path)
    job = await manager.start(
        "local", None, "test", [sys.executable, "-c", "print(*range(30000), sep='\\n')"]
    )
    app: App[None] = App()
    async with app.run_test(size=(100, 24)):
        await app.push_screen(JobLogScreen(manager, job, from_start=True))
        log = app.screen.query_one(JobLog)
        await _until(lambda: log.ended and not log._pending, timeout=30)
        await asyncio.sleep(0.2)
        assert log.received == 30000
        assert log.line_count == 10_000
        assert log.lines[-1] == "29999"
