"""Operations from the console on the real lab.

1. A backup started with keys only streams lines into the job log widget while it runs; that
   console (a subprocess) is SIGKILLed mid-backup; a new console re-attaches and shows the backup
   finishing DONE in the catalogue.
2. switch-wal from the console shows the WAL it closed and its arrival on the node; the job view
   follows the node's barman.log filtered to the server.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from ground_truth import xlogdb_segments
from rich.text import Text
from textual.widgets import DataTable

from dr_console.config import Config, load_config
from dr_console.core.jobs import JobManager
from dr_console.core.journal import Journal
from dr_console.core.transport import open_transport
from dr_console.lab.lab import Lab
from dr_console.models import Job, JobState
from dr_console.tui.app import DrConsoleApp
from dr_console.tui.launch import make_app
from dr_console.tui.screens.confirm import ConfirmScreen
from dr_console.tui.screens.job_log import JobLogScreen
from dr_console.tui.screens.jobs import JobsScreen, JobsTable, job_key
from dr_console.tui.screens.server import ServerScreen
from dr_console.tui.widgets.backup_catalogue import BackupTable
from dr_console.tui.widgets.barman_log import BarmanLog
from dr_console.tui.widgets.job_log import JobLog

pytestmark = pytest.mark.integration

NODE, SERVER = "bserver", "pgserver"
DRIVER = Path(__file__).with_name("tui_ops_driver.py")
BACKUP_TIMEOUT = 180.0
_BACKUP_ID_RE = re.compile(r"Starting backup using \S+ method for server \S+ in \S+/(\d{8}T\d{6})")


def _config(lab: Lab, journal: Path) -> Config:
    config = load_config(lab.config_path)
    return replace(config, console=replace(config.console, journal_dir=str(journal)))


def _cell(table: DataTable[Text], row: str, column: str) -> str:
    value = table.get_cell(row, column)
    return value.plain if isinstance(value, Text) else str(value)


async def _until(condition: object, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(0.1)


def _notes(app: DrConsoleApp) -> list[str]:
    return [n.message for n in app._notifications]


async def _open_server(app: DrConsoleApp) -> ServerScreen:
    await _until(lambda: app.polls >= 1, 90, "the first poll")
    app.open_server(f"{NODE}/{SERVER}")
    await _until(lambda: isinstance(app.screen, ServerScreen), 10, "the server view")
    screen = app.screen
    assert isinstance(screen, ServerScreen)
    return screen


async def _no_backup_running(manager: JobManager) -> None:
    async def busy() -> bool:
        return any(j.running and j.operation == "backup" for j in await manager.list(NODE))

    async with asyncio.timeout(BACKUP_TIMEOUT):
        while await busy():
            await asyncio.sleep(1)


async def test_backup_from_keys_survives_a_killed_console_and_ends_done(
    lab: Lab, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    config = _config(lab, journal)
    transport = open_transport(config.node(NODE), connect_timeout=10)
    manager = JobManager({NODE: transport}, Journal(journal), config)
    backup_id: str | None = None
    job: Job | None = None
    try:
        await _no_backup_running(manager)
        proc = subprocess.Popen(
            [sys.executable, str(DRIVER), str(lab.config_path), str(journal), NODE, SERVER],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "TERM": "dumb"},
        )
        try:
            line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 150)  # type: ignore[union-attr]
            if not line:
                _, err = proc.communicate(timeout=30)
                pytest.fail(f"the console driver ended without a report: {err[-2000:]}")
            report = json.loads(line)
            # the log widget had lines while the backup ran: now the console dies, hard
            assert report["running"] is True, report
            assert report["lines"], report
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        match = next((m for m in map(_BACKUP_ID_RE.search, report["lines"]) if m), None)
        assert match, report["lines"]
        backup_id = match.group(1)
        job = await manager.get(NODE, report["job_id"])
        running_at_restart = job.running

        app = make_app(config)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await _open_server(app)
            key = (NODE, job.job_id)
            if running_at_restart:
                await _until(
                    lambda: any(
                        f"re-attached: backup {SERVER} on {NODE}" in n for n in _notes(app)
                    ),
                    30,
                    "the re-attach notice",
                )
            await _until(
                lambda: key in app.board.jobs and not app.board.jobs[key].running,
                BACKUP_TIMEOUT,
                "the backup job to end",
            )
            assert app.board.jobs[key].state is JobState.SUCCEEDED, app.board.jobs[key]
            table = screen.query_one(BackupTable)
            await _until(
                lambda: backup_id in table._shown and _cell(table, backup_id, "status") == "DONE",
                90,
                f"backup {backup_id} DONE in the catalogue",
            )
            await pilot.press("q")
    finally:
        if backup_id is not None and job is not None:
            final = await manager.get(NODE, job.job_id)
            if not final.running and final.state is not JobState.SUCCEEDED:
                lab.barman(NODE, "delete", SERVER, backup_id, json=False)
        await transport.close()


async def test_switch_wal_from_the_console_shows_the_closed_wal_and_its_arrival(
    lab: Lab, tmp_path: Path
) -> None:
    app = make_app(_config(lab, tmp_path / "journal"))
    async with app.run_test(size=(120, 40)) as pilot:
        await _open_server(app)
        before = set(app.board.jobs)
        await pilot.press("w")
        await _until(lambda: isinstance(app.screen, ConfirmScreen), 10, "the confirmation")
        await pilot.press("y")

        def switch_job() -> Job | None:
            return next(
                (j for k, j in app.board.jobs.items() if k not in before and j.node == NODE),
                None,
            )

        await _until(lambda: switch_job() is not None, 30, "the switch-wal job")
        job = switch_job()
        assert job is not None and job.operation == "switch-wal"
        key = (job.node, job.job_id)
        await _until(lambda: key in app.board.arrivals, 90, "the closed WAL")
        arrival = app.board.arrivals[key]
        await _until(lambda: arrival.confirmed, 90, f"WAL {arrival.wal} arriving")
        assert arrival.wal in xlogdb_segments(lab, NODE)  # Barman's own record of the WAL
        assert any(f"WAL {arrival.wal} arrived on {NODE} at" in n for n in _notes(app))
        await pilot.press("j")
        await _until(lambda: isinstance(app.screen, JobsScreen), 10, "the jobs screen")
        table = app.screen.query_one(JobsTable)
        await _until(lambda: job_key(job) in table._shown, 10, "the job's row")
        phase = _cell(table, job_key(job), "phase")
        assert phase.startswith(f"WAL {arrival.wal} closed, arrived "), phase

        # the job view: its log, and the node's barman.log filtered to the server (l)
        table.move_cursor(row=table.get_row_index(job_key(job)))
        await pilot.press("enter")
        await _until(lambda: isinstance(app.screen, JobLogScreen), 10, "the job log")
        log = app.screen.query_one(JobLog)
        await _until(lambda: any(arrival.wal in line for line in log.lines), 30, "the WAL line")
        await pilot.press("l")
        pane = app.screen.query_one(BarmanLog)
        await _until(
            lambda: any(SERVER in line and not line.startswith("--") for line in pane.lines),
            60,
            "barman.log lines naming the server",
        )
        assert pane.path is not None and pane.path.endswith("barman.log")
        await pilot.press("escape", "escape", "q")
