"""The job log screen follows a real detached job (LocalTransport) while it runs."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import Static

from dr_console.config import Config, ConsoleConfig, NodeConfig
from dr_console.core.jobs import JobManager
from dr_console.core.journal import Journal
from dr_console.core.transport_local import LocalTransport
from dr_console.models import JobState, NodeRole
from dr_console.tui.screens.job_log import FOLLOWING, JobLogScreen
from dr_console.tui.widgets.buffered_log import BufferedLog
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
        await _until(lambda: log.ended and not log.pending, timeout=30)
        await asyncio.sleep(0.2)
        assert log.received == 30000
        assert log.line_count == 10_000
        assert log.lines[-1] == "29999"


def _shown(log: JobLog | BufferedLog) -> list[str]:
    top = round(log.scroll_y)
    return list(log.lines[top : top + log.scrollable_content_region.height])


async def test_scrolling_back_holds_the_view_still_and_end_resumes_with_nothing_lost(
    tmp_path: Path,
) -> None:
    manager = _manager(tmp_path)
    writer = "import time; [print(i, flush=True) or time.sleep(0.002) for i in range(100000)]"
    job = await manager.start("local", None, "test", [sys.executable, "-c", writer])
    app: App[None] = App()
    app.animation_level = "none"  # page-up moves at once, as in drconsole itself
    try:
        async with app.run_test(size=(100, 24)) as pilot:
            await app.push_screen(JobLogScreen(manager, job, from_start=True))
            log = app.screen.query_one(JobLog)
            follow = app.screen.query_one("#job-log-follow", Static)
            await _until(lambda: log.line_count > 200)
            assert str(follow.render()) == FOLLOWING
            await pilot.press("pageup")
            await _until(lambda: log.held > 0)
            shown, count, received = _shown(log), log.line_count, log.received
            await asyncio.sleep(0.5)
            assert log.received > received  # the job went on writing…
            assert _shown(log) == shown and log.line_count == count  # …and the view held still
            await _until(lambda: str(follow.render()).startswith("following paused: "))
            assert "new lines held · end resumes" in str(follow.render())
            await pilot.press("end")
            await _until(lambda: log.held == 0 and log.line_count > count)
            await _until(lambda: str(follow.render()) == FOLLOWING)
            numbers = [int(line) for line in log.lines]
            assert numbers == list(range(len(numbers)))  # every line, in order
    finally:
        await manager.cancel(job)


class _LogApp(App[None]):
    def compose(self) -> ComposeResult:
        yield BufferedLog(max_lines=50)


async def test_held_lines_are_bounded_and_the_notice_says_how_many_were_dropped() -> None:
    app = _LogApp()
    async with app.run_test(size=(60, 10)) as pilot:
        log = app.query_one(BufferedLog)
        for i in range(100):
            log.add(str(i))
        await _until(lambda: log.line_count == 50 and log.pending == 0)
        await pilot.press("home")
        await _until(lambda: log.scroll_y == 0)
        for i in range(100, 220):
            log.add(str(i))
        await _until(lambda: log.held == 120)
        expected = "following paused: 120 new lines held, the oldest 70 dropped · end resumes"
        assert log.held_text() == expected
        assert list(log.lines) == [str(i) for i in range(50, 100)]
        await pilot.press("end")
        await _until(lambda: log.held == 0 and log.pending == 0)
        assert list(log.lines) == [str(i) for i in range(170, 220)]
