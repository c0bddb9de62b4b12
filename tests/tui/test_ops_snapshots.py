"""SVG snapshots at 80x24 of the jobs screen and of the typed confirmation of a delete.

Deterministic: the hand-built fleet of fleet_fixture, a frozen clock, and jobs given as data (the
nodes' job directories are empty, so the listing adds nothing). Update with
`pytest tests/tui/test_ops_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from textual.pilot import Pilot

from dr_console.models import Job, JobState
from dr_console.tui.app import DrConsoleApp
from dr_console.tui.jobs_board import Arrival
from dr_console.tui.screens.confirm import ConfirmScreen
from dr_console.tui.screens.jobs import JobsScreen, JobsTable
from dr_console.tui.screens.server import ServerScreen
from tests.tui.fleet_fixture import T0
from tests.tui.ops_fixture import ops_app

SIZE = (80, 24)


def recorded_jobs() -> list[Job]:
    def job(
        job_id: str, node: str, server: str | None, op: str, args: tuple[str, ...], **kw: object
    ) -> Job:
        return Job(
            job_id=job_id,
            node=node,
            server=server,
            operation=op,
            argv=("barman", *args),
            job_path=f"/home/bmuser/.drconsole/jobs/{job_id}",
            pid=4100,
            user="dba",
            **kw,  # type: ignore[arg-type]
        )

    return [
        job(
            "20261130T172800Z-0a1b2c",
            "bserver",
            "pgserver",
            "backup",
            ("backup", "pgserver"),
            state=JobState.RUNNING,
            started_at=T0 - timedelta(minutes=2),
            phase="copying files (rsync-concurrent, 2 jobs)",
        ),
        job(
            "20261130T172500Z-3d4e5f",
            "bserver",
            "pgserver",
            "switch-wal",
            ("switch-wal", "--force", "--archive", "pgserver"),
            state=JobState.SUCCEEDED,
            started_at=T0 - timedelta(minutes=5),
            ended_at=T0 - timedelta(minutes=5) + timedelta(seconds=3),
            exit_status=0,
        ),
        job(
            "20261130T171000Z-6a7b8c",
            "geobserver",
            None,
            "cron",
            ("cron",),
            state=JobState.FAILED,
            started_at=T0 - timedelta(minutes=20),
            ended_at=T0 - timedelta(minutes=20) + timedelta(seconds=1),
            exit_status=1,
            phase="error: Unknown server 'pgserver'",
        ),
    ]


async def _settle(pilot: Pilot[object]) -> DrConsoleApp:
    app = pilot.app
    assert isinstance(app, DrConsoleApp)
    for _ in range(250):
        if app.polls:
            break
        await pilot.pause(0.02)
    assert app.polls, "the replayed poll did not arrive"
    return app


def test_jobs_screen(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    app, _ = ops_app(tmp_path, plain_barman=True)

    async def run_before(pilot: Pilot[object]) -> None:
        console = await _settle(pilot)
        jobs = recorded_jobs()
        for job in jobs:
            console.board.put(job)
        arrival = Arrival("00000001000000000000000C", T0 - timedelta(minutes=5, seconds=-2), True)
        console.board.arrivals[(jobs[1].node, jobs[1].job_id)] = arrival
        await pilot.press("j")
        for _ in range(250):
            if isinstance(console.screen, JobsScreen):
                table = console.screen.query_one(JobsTable)
                if table.row_count == len(jobs):
                    break
            await pilot.pause(0.02)
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_delete_confirmation(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    app, _ = ops_app(tmp_path, plain_barman=True)

    async def run_before(pilot: Pilot[object]) -> None:
        console = await _settle(pilot)
        console.open_server("bserver/pgserver")
        for _ in range(250):
            if isinstance(console.screen, ServerScreen):
                break
            await pilot.pause(0.02)
        await pilot.pause(0.1)
        await pilot.press("D")
        for _ in range(250):
            if isinstance(console.screen, ConfirmScreen):
                break
            await pilot.pause(0.02)
        await pilot.press(*"2026")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
