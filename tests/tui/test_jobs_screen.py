"""The jobs screen on real detached jobs (LocalTransport nodes): re-attach on start, listing,
opening a job's log, cancel with a typed confirmation, and read-only."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.text import Text
from textual.widgets import DataTable, Static

from dr_console.core.jobs import JobManager
from dr_console.models import Job, JobState
from dr_console.tui.app import DrConsoleApp
from dr_console.tui.screens.confirm import ConfirmScreen
from dr_console.tui.screens.job_log import JobLogScreen
from dr_console.tui.screens.jobs import JobsScreen, JobsTable, job_key
from dr_console.tui.widgets.job_log import JobLog
from tests.tui.helpers import cell, notifications, row_keys, text_of, wait_for
from tests.tui.ops_fixture import ops_app

SCAN_WAIT = 3.5  # a little more than one listing interval of the jobs screen
LONG = ["sh", "-c", "for i in 1 2 3; do echo line $i; done; sleep 60"]


async def two_jobs(manager: JobManager) -> tuple[Job, Job]:
    """A job still running on bserver and one that has ended on geobserver."""
    done = await manager.start("geobserver", None, "test", ["sh", "-c", "echo finished"])
    assert await manager.wait(done, poll=0.1, timeout=15) == 0
    running = await manager.start("bserver", "pgserver", "test", LONG)
    return running, done


async def open_jobs(pilot: object, app: DrConsoleApp, rows: int) -> JobsTable:
    await pilot.press("j")  # type: ignore[attr-defined]
    await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen))  # type: ignore[arg-type]
    table = app.screen.query_one(JobsTable)
    await wait_for(pilot, lambda: table.row_count == rows, timeout=10)  # type: ignore[arg-type]
    return table


def _cell(table: DataTable[Text], job: Job, column: str) -> str:
    return cell(table, job_key(job), column)


async def test_jobs_are_reattached_listed_opened_and_cancelled(tmp_path: Path) -> None:
    app, manager = ops_app(tmp_path)
    running, done = await two_jobs(manager)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(
                pilot,
                lambda: any(
                    f"re-attached: test pgserver on bserver is running (job {running.job_id})" in n
                    for n in notifications(app)
                ),
                timeout=10,
            )
            table = await open_jobs(pilot, app, 2)
            assert row_keys(table) == [job_key(running), job_key(done)]  # running first
            assert _cell(table, running, "state") == "RUNNING"
            assert _cell(table, done, "state") == "SUCCEEDED"
            assert _cell(table, done, "node") == "geobserver"
            detail = text_of(app.screen.query_one("#job-detail", Static))
            assert running.job_id in detail and "sleep 60" in detail

            await pilot.press("enter")  # the log, from its start
            await wait_for(pilot, lambda: isinstance(app.screen, JobLogScreen))
            log = app.screen.query_one(JobLog)
            await wait_for(pilot, lambda: log.line_count >= 3, timeout=10)
            assert list(log.lines)[:3] == ["line 1", "line 2", "line 3"]
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen))

            await pilot.press("x")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            confirm = app.screen
            assert isinstance(confirm, ConfirmScreen) and confirm.typed == "pgserver"
            await pilot.press(*"pgother", "enter")
            await pilot.pause()
            assert app.screen is confirm and confirm.refusals == 1
            assert (await manager.get("bserver", running.job_id)).running
            await pilot.press(*"pgserver", "enter")
            await wait_for(
                pilot, lambda: _cell(table, running, "state").startswith("CANCELLED"), timeout=20
            )
            assert not (await manager.get("bserver", running.job_id)).running

            await pilot.press("down")  # the finished job: nothing to cancel
            await pilot.press("x")
            await pilot.pause()
            assert isinstance(app.screen, JobsScreen)
            assert any("is not running" in n for n in notifications(app))
    finally:
        if (await manager.get("bserver", running.job_id)).running:
            await asyncio.wait_for(manager.cancel(running), 20)


async def test_a_job_started_from_the_app_is_listed_until_it_ends(tmp_path: Path) -> None:
    app, _ = ops_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        app.open_server("geobserver/pgserver")
        await wait_for(pilot, lambda: app.state.servers and app.screen.id != "fleet")
        await pilot.press("c", "y")
        table = await open_jobs(pilot, app, 1)
        key = table.selected_key
        assert key is not None and key.startswith("geobserver/")
        await wait_for(
            pilot, lambda: cell(table, key, "state") == JobState.SUCCEEDED.value.upper(), 30
        )
        assert cell(table, key, "operation") == "cron"
        await pilot.press("escape")
        assert not isinstance(app.screen, JobsScreen)


async def test_read_only_lists_jobs_but_cannot_cancel(tmp_path: Path) -> None:
    app, manager = ops_app(tmp_path, readonly=True)
    running, _ = await two_jobs(manager)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            table = await open_jobs(pilot, app, 2)
            footer_actions = {b.binding.action for b in app.screen.active_bindings.values()}
            assert "cancel_job" not in footer_actions
            await pilot.press("x")
            await pilot.pause()
            assert isinstance(app.screen, JobsScreen)
            assert any("read-only: cancel" in n for n in notifications(app))
            assert _cell(table, running, "state") == "RUNNING"
    finally:
        await asyncio.wait_for(manager.cancel(running), 20)


async def test_jobs_are_reattached_when_their_node_comes_back(tmp_path: Path) -> None:
    from tests.tui.fleet_fixture import fleet, with_node_down

    up = fleet()
    app, manager = ops_app(tmp_path, snapshots=[up, with_node_down(up, "bserver", "refused"), up])
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.polls >= 1 and "bserver" in app.board.listed_at)
        app.request_poll()  # bserver is down in this one
        await wait_for(pilot, lambda: app.polls >= 2)
        job = await manager.start("bserver", "pgserver", "test", LONG)  # while it is "down"
        try:
            await pilot.pause(0.5)
            assert (job.node, job.job_id) not in app.board.jobs
            app.request_poll()  # bserver is back: its jobs are listed and followed again
            await wait_for(
                pilot,
                lambda: any(
                    "re-attached: test pgserver on bserver" in n for n in notifications(app)
                ),
                timeout=10,
            )
            assert (job.node, job.job_id) in app.board.watched
        finally:
            await asyncio.wait_for(manager.cancel(job), 20)


async def test_the_job_view_follows_barman_log_filtered_to_the_server(tmp_path: Path) -> None:
    from dr_console.tui.widgets.barman_log import BarmanLog

    app, manager = ops_app(tmp_path)
    barman_log = tmp_path / "barman.log"  # the log_file of the fixture's Barman config
    barman_log.write_text(
        "2026-11-30 17:19:20,100 [1] barman.cli INFO: about pgother only\n"
        "2026-11-30 17:19:21,203 [2] barman.backup INFO: Starting backup of pgserver\n",
        encoding="utf-8",
    )
    job = await manager.start("bserver", "pgserver", "test", LONG)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await app.push_screen(JobLogScreen(manager, job))
            pane = app.screen.query_one(BarmanLog)
            assert not pane.display
            await pilot.press("l")
            assert pane.display
            await wait_for(pilot, lambda: "Starting backup of pgserver" in "".join(pane.lines), 30)
            with barman_log.open("a", encoding="utf-8") as out:
                out.write("2026-11-30 17:19:30,000 [3] barman.x INFO: pgother again\n")
                out.write("2026-11-30 17:19:31,000 [4] barman.x INFO: pgserver WAL archived\n")
            await wait_for(pilot, lambda: "pgserver WAL archived" in "".join(pane.lines), 15)
            assert pane.path == str(barman_log)
            assert not any("pgother" in line for line in pane.lines)
    finally:
        await asyncio.wait_for(manager.cancel(job), 20)


async def test_jobs_are_listed_even_when_the_journal_cannot_be_written(tmp_path: Path) -> None:
    from dr_console.core.journal import Journal

    app, manager = ops_app(tmp_path)
    done = await manager.start("geobserver", None, "test", ["true"])
    assert await manager.wait(done, poll=0.1, timeout=15) == 0
    broken = tmp_path / "not-a-dir"
    broken.write_text("", encoding="utf-8")
    app.jobs = JobManager(manager.transports, Journal(broken), manager.config)
    async with app.run_test(size=(100, 30)) as pilot:
        table = await open_jobs(pilot, app, 1)
        assert _cell(table, done, "state") == "SUCCEEDED"
        await pilot.pause(SCAN_WAIT)
        said = [n for n in notifications(app) if "audit journal" in n]
        assert len(said) == 1 and "Not a directory" in said[0]
