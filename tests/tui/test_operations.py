"""Operations from the server view, with their confirmations, on a real JobManager whose two
nodes are this machine (LocalTransport) running the venv's real Barman (tests/tui/ops_fixture)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Input, Static

from dr_console.core.jobs import JobManager
from dr_console.models import Job, JobState
from dr_console.tui.app import DrConsoleApp
from dr_console.tui.screens.confirm import ConfirmScreen
from dr_console.tui.screens.server import ServerScreen
from tests.tui.helpers import notifications, text_of, wait_for, wait_polls
from tests.tui.ops_fixture import BARMAN, NODES, ops_app

JOB_TIMEOUT = 30.0


async def open_server(pilot: object, app: DrConsoleApp, key: str) -> ServerScreen:
    await wait_polls(pilot, app, 1)  # type: ignore[arg-type]
    app.open_server(key)
    await wait_for(pilot, lambda: isinstance(app.screen, ServerScreen))  # type: ignore[arg-type]
    screen = app.screen
    assert isinstance(screen, ServerScreen)
    return screen


async def jobs_on(manager: JobManager) -> dict[str, list[Job]]:
    return {node: await manager.list(node, journal=False) for node in NODES}


async def confirm_text(pilot: object, app: DrConsoleApp) -> str:
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))  # type: ignore[arg-type]
    return text_of(app.screen.query_one("#confirm-text", Static))


async def ended(pilot: object, app: DrConsoleApp, node: str) -> Job:
    """The single job of `node`, once the app has seen it end."""

    def done() -> bool:
        jobs = [j for (n, _), j in app.board.jobs.items() if n == node]
        return len(jobs) == 1 and not jobs[0].running

    await wait_for(pilot, done, timeout=JOB_TIMEOUT)  # type: ignore[arg-type]
    return next(j for (n, _), j in app.board.jobs.items() if n == node)


async def test_backup_asks_then_runs_on_the_primary_and_forces_a_slow_refresh(
    tmp_path: Path,
) -> None:
    app, manager = ops_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_server(pilot, app, "bserver/pgserver")
        await pilot.press("b")
        text = await confirm_text(pilot, app)
        assert "on node bserver:" in text and "backup pgserver" in text
        slow_before = app.collector.calls.count(True)  # type: ignore[attr-defined]
        await pilot.press("y")
        job = await ended(pilot, app, "bserver")
        assert job.argv[0] == BARMAN and job.argv[-2:] == ("backup", "pgserver")
        assert job.state is JobState.FAILED and job.exit_status == 1  # no PostgreSQL there
        await wait_for(pilot, lambda: any("FAILED (exit 1)" in n for n in notifications(app)))
        assert any("Impossible to start the backup" in n for n in notifications(app))
        await wait_for(pilot, lambda: app.collector.calls.count(True) > slow_before)  # type: ignore[attr-defined]
    on_nodes = await jobs_on(manager)
    assert [j.operation for j in on_nodes["bserver"]] == ["backup"]
    assert on_nodes["geobserver"] == []


async def test_switch_wal_is_forced_and_archived(tmp_path: Path) -> None:
    app, manager = ops_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_server(pilot, app, "bserver/pgserver")
        await pilot.press("w")
        assert "switch-wal --force --archive pgserver" in await confirm_text(pilot, app)
        await pilot.press("y")
        job = await ended(pilot, app, "bserver")
    assert job.argv[-4:] == ("switch-wal", "--force", "--archive", "pgserver")
    assert [j.job_id for j in (await jobs_on(manager))["bserver"]] == [job.job_id]


async def test_cron_runs_on_the_node_of_the_server_shown(tmp_path: Path) -> None:
    app, manager = ops_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_server(pilot, app, "geobserver/pgserver")
        await pilot.press("c")
        assert app.screen.query_one("#confirm-body").border_title == "barman cron on geobserver"
        await pilot.press("y")
        job = await ended(pilot, app, "geobserver")
        assert job.state is JobState.SUCCEEDED, job
        assert job.argv[-1] == "cron" and job.server is None
    assert (await jobs_on(manager))["bserver"] == []


async def test_backup_and_switch_wal_are_refused_on_a_passive_node(tmp_path: Path) -> None:
    app, manager = ops_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_server(pilot, app, "geobserver/pgserver")
        for key in ("b", "w"):
            await pilot.press(key)
            await pilot.pause()
            assert app.screen is screen, "no confirmation for a refused operation"
        said = notifications(app)
        assert any("backup is refused on geobserver" in n and "bserver" in n for n in said)
        assert any("switch-wal is refused on geobserver" in n for n in said)
    assert await jobs_on(manager) == {"bserver": [], "geobserver": []}


async def test_no_or_escape_starts_nothing(tmp_path: Path) -> None:
    app, manager = ops_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_server(pilot, app, "bserver/pgserver")
        for key, answer in (("b", "n"), ("c", "escape")):
            await pilot.press(key)
            await confirm_text(pilot, app)
            await pilot.press(answer)
            await wait_for(pilot, lambda: app.screen is screen)
        await wait_for(
            pilot, lambda: sum("cancelled, nothing done" in n for n in notifications(app)) == 2
        )
    assert await jobs_on(manager) == {"bserver": [], "geobserver": []}


async def test_keep_and_release_of_the_selected_backup(tmp_path: Path) -> None:
    app, _ = ops_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_server(pilot, app, "bserver/pgserver")
        await pilot.press("u")  # the selected backup (first row) is not kept
        await pilot.pause()
        assert app.screen is screen
        assert any("has no keep annotation" in n for n in notifications(app))
        await pilot.press("k")
        text = await confirm_text(pilot, app)
        assert "keep --target full pgserver 20261130T171940" in text
        await pilot.press("y")
        job = await ended(pilot, app, "bserver")
    assert job.operation == "keep"
    assert job.argv[-5:] == ("keep", "--target", "full", "pgserver", "20261130T171940")


async def test_delete_needs_the_backup_id_typed_exactly(tmp_path: Path) -> None:
    app, manager = ops_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_server(pilot, app, "bserver/pgserver")
        await pilot.press("D")
        text = await confirm_text(pilot, app)
        assert "DELETE backup 20261130T171940" in app.screen.query_one("#confirm-body").border_title
        assert "cannot be undone" in text
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        # y is a letter of the answer here, not a yes; a wrong id is refused and stays open
        await pilot.press("y", *"20261130T170102", "enter")
        await pilot.pause()
        assert app.screen is confirm and confirm.refusals == 1
        assert "nothing done" in text_of(confirm.query_one("#confirm-error", Static))
        assert confirm.query_one(Input).value == ""
        assert await jobs_on(manager) == {"bserver": [], "geobserver": []}
        await pilot.press(*"20261130T171940", "enter")
        job = await ended(pilot, app, "bserver")
    assert job.argv[-3:] == ("delete", "pgserver", "20261130T171940")


async def test_operations_without_a_job_manager_say_so(tmp_path: Path) -> None:
    app, _ = ops_app(tmp_path, with_jobs=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_server(pilot, app, "bserver/pgserver")
        await pilot.press("b")
        await pilot.pause()
        assert app.screen is screen
        assert any("operations are not available" in n for n in notifications(app))


async def test_a_concurrent_backup_is_refused_with_the_reason(tmp_path: Path) -> None:
    app, manager = ops_app(tmp_path)
    # a backup job of pgserver already runs on bserver (started by another console)
    other = await manager.start("bserver", "pgserver", "backup", ["sleep", "30"])
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await open_server(pilot, app, "bserver/pgserver")
            await pilot.press("b")
            await confirm_text(pilot, app)
            await pilot.press("y")
            await wait_for(
                pilot, lambda: any("already running" in n for n in notifications(app)), 10
            )
            assert any(f"job {other.job_id}" in n for n in notifications(app))
    finally:
        await asyncio.wait_for(manager.cancel(other), 20)
    assert [j.job_id for j in (await jobs_on(manager))["bserver"]] == [other.job_id]


OPERATION_KEYS = ("b", "w", "c", "k", "u", "D")


async def test_read_only_removes_every_operation(tmp_path: Path) -> None:
    from textual.widgets import DataTable

    from dr_console.tui.commands import ActionsProvider
    from dr_console.tui.keymap import REGISTRY
    from dr_console.tui.screens.help import HelpScreen

    app, manager = ops_app(tmp_path, readonly=True)
    operations = {s.id for s in REGISTRY if s.operation}
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_server(pilot, app, "bserver/pgserver")
        shown = {b.binding.action for b in screen.active_bindings.values()}
        assert not any(action.startswith("operate") for action in shown)  # footer and keys
        titles = [title for title, _, _ in ActionsProvider(screen)._commands()]
        assert titles and not any(
            t.split(" (")[0] in {"backup", "switch-wal", "cron", "keep", "release", "delete"}
            for t in titles
        )
        for key in OPERATION_KEYS:
            await pilot.press(key)
            await pilot.pause()
            assert app.screen is screen, f"{key} opened something in read-only"
        refusals = [n for n in notifications(app) if n.startswith("read-only:")]
        assert len(refusals) == len(OPERATION_KEYS)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        help_rows = {str(r.key.value) for r in app.screen.query_one(DataTable).ordered_rows}
        assert help_rows and not help_rows & operations
    assert await jobs_on(manager) == {"bserver": [], "geobserver": []}


async def test_the_palette_offers_operations_on_the_server_view_only(tmp_path: Path) -> None:
    from dr_console.tui.commands import ActionsProvider

    app, _ = ops_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_polls(pilot, app, 1)
        fleet_titles = [t for t, _, _ in ActionsProvider(app.screen)._commands()]
        assert not any(t.startswith("backup") for t in fleet_titles)
        assert "jobs (j)" in fleet_titles
        screen = await open_server(pilot, app, "bserver/pgserver")
        commands = {t: run for t, run, _ in ActionsProvider(screen)._commands()}
        assert {"backup (b)", "switch-wal (w)", "cron (c)", "delete (D)"} <= set(commands)
        ran = commands["switch-wal (w)"]()
        if asyncio.iscoroutine(ran):  # the palette awaits what a command returns
            await ran
        assert "switch-wal --force --archive" in await confirm_text(pilot, app)
        await pilot.press("escape")
