"""Run the console headless on a config and start a backup of SERVER on NODE with keys only.

Used by test_tui_ops_lab.py, which SIGKILLs this process mid-backup. Usage:
    python tui_ops_driver.py CONFIG JOURNAL_DIR NODE SERVER
Prints one JSON line once the job log widget has received lines while the job runs:
{"job_id": ..., "lines": [...], "running": true}, then waits to be killed (at most 10 minutes).
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import replace
from pathlib import Path

from dr_console.config import load_config
from dr_console.tui.launch import make_app
from dr_console.tui.screens.job_log import JobLogScreen
from dr_console.tui.screens.jobs import JobsScreen
from dr_console.tui.screens.server import ServerScreen
from dr_console.tui.widgets.fleet_table import FleetTable
from dr_console.tui.widgets.job_log import JobLog

STEP_TIMEOUT = 90.0


async def until(condition: object, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STEP_TIMEOUT
    while not condition():  # type: ignore[operator]
        if loop.time() > deadline:
            raise SystemExit(f"driver: timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def main(config_path: str, journal_dir: str, node: str, server: str) -> None:
    config = load_config(Path(config_path))
    config = replace(config, console=replace(config.console, journal_dir=journal_dir))
    app = make_app(config)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(lambda: app.polls >= 1, "the first poll")
        table = app.screen.query_one(FleetTable)
        await until(lambda: f"{node}/{server}" in app.state.servers, f"{node}/{server}")
        await pilot.pause()
        while table.cursor_key != f"{node}/{server}":
            await pilot.press("down")
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, ServerScreen), "the server view")
        before = set(app.board.jobs)
        await pilot.press("b")
        await pilot.pause(0.3)
        await pilot.press("y")
        await until(
            lambda: any(j.running for k, j in app.board.jobs.items() if k not in before),
            "the job to start",
        )
        await pilot.press("j")
        await until(lambda: isinstance(app.screen, JobsScreen), "the jobs screen")
        await pilot.pause(0.2)
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, JobLogScreen), "the job log")
        screen = app.screen
        assert isinstance(screen, JobLogScreen)
        log = screen.query_one(JobLog)
        await until(lambda: log.line_count >= 1, "lines in the log widget")
        assert app.jobs is not None
        job = await app.jobs.get(screen.job.node, screen.job.job_id)
        report = {"job_id": job.job_id, "lines": list(log.lines), "running": job.running}
        print(json.dumps(report), flush=True)
        await asyncio.sleep(600)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
