"""The recovery walkthrough with the keyboard only, on the fleet recorded from the real lab
(tests/recordings/fleet-lab.json), and SVG snapshots of each step at 80x24.

Steps that need Barman (backup details, pre-flight, the run) are walked for real on the lab in
tests/integration/test_recovery_wizard_lab.py; here the console has a job manager without node
connections, so those steps must show the failure on the step, never crash. The snapshots of
steps 3-7 are built from deterministic data through the same core functions (choose_backup,
preflight.evaluate, build_plan, post_recovery_checklist). Update the baselines with
`pytest tests/tui/test_recovery_wizard.py --snapshot-update`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input, OptionList, Static

from dr_console.config import Config
from dr_console.core.jobs import JobManager
from dr_console.core.journal import Journal
from dr_console.core.preflight import evaluate
from dr_console.core.recovery import (
    Destination,
    RecoveryOptions,
    RestoreHost,
    build_plan,
    choose_backup,
    parse_target,
    post_recovery_checklist,
)
from dr_console.core.recovery_checklist import RestoredConf
from dr_console.core.transport_local import LocalTransport
from dr_console.models import FleetSnapshot
from dr_console.tui.app import DrConsoleApp
from dr_console.tui.launch import make_app
from dr_console.tui.screens.fleet import FleetScreen
from dr_console.tui.screens.recovery import (
    BackupStep,
    DestinationStep,
    OptionsStep,
    ReviewStep,
    ServerStep,
    TargetStep,
    open_recovery,
)
from dr_console.tui.screens.recovery_run import RunLog, RunStep, TypedConfirm
from dr_console.tui.screens.recovery_state import (
    RecoveryServices,
    WizardState,
    source_from_state,
)
from tests.tui.helpers import notifications, type_text, wait_for
from tests.tui.replay import ReplayCollector
from tests.tui.test_snapshots import lab_config, lab_fleet

PRIMARY = "bserver/pgserver"
PASSIVE = "geobserver/pgserver"


def wizard_app(tmp_path: Path, *, readonly: bool = False, jobs: bool = True) -> DrConsoleApp:
    fleet = lab_fleet()
    frozen = fleet.taken_at + timedelta(seconds=30)

    def now() -> datetime:
        return frozen

    cfg = lab_config(fleet)
    manager = JobManager({}, Journal(tmp_path / "journal"), cfg) if jobs else None
    return make_app(
        cfg, collector=ReplayCollector([fleet]), now=now, readonly=readonly, jobs=manager
    )


async def polled(pilot: Pilot[object]) -> DrConsoleApp:
    app = pilot.app
    assert isinstance(app, DrConsoleApp)
    await wait_for(pilot, lambda: app.polls >= 1)
    return app


def error_line(screen: Screen[object]) -> str:
    return str(screen.query_one("#wizard-error", Static).render())


async def quiet(pilot: Pilot[object], app: DrConsoleApp) -> None:
    """Let the step settle, without the jobs scan's toasts (no node connection here)."""
    for field in app.screen.query(Input):
        field.cursor_blink = False  # a blinking cursor would make the picture random
    await pilot.pause(0.3)
    app.clear_notifications()
    await pilot.pause(0.1)


# --- refusals at the door -----------------------------------------------------------------------


async def test_read_only_console_refuses_the_walkthrough(tmp_path: Path) -> None:
    app = wizard_app(tmp_path, readonly=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await polled(pilot)
        open_recovery(app, PRIMARY)
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        assert "read-only: recovery is not available" in notifications(app)


async def test_console_without_node_connections_refuses(tmp_path: Path) -> None:
    app = wizard_app(tmp_path, jobs=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await polled(pilot)
        open_recovery(app, None)
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        assert any("no job manager" in n for n in notifications(app))


async def test_capital_r_opens_the_walkthrough_from_the_fleet_and_the_server_view(
    tmp_path: Path,
) -> None:
    app = wizard_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await polled(pilot)
        await pilot.press("R")  # on the fleet: the selected row's server
        await wait_for(pilot, lambda: isinstance(app.screen, ServerStep))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen))
        await pilot.press("enter")  # into the server view, then R there
        await wait_for(pilot, lambda: not isinstance(app.screen, FleetScreen))
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, ServerStep))


async def test_capital_r_in_read_only_only_says_so(tmp_path: Path) -> None:
    app = wizard_app(tmp_path, readonly=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await polled(pilot)
        await pilot.press("R")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        assert any("read-only" in n for n in notifications(app))


# --- walking with keys --------------------------------------------------------------------------


async def test_keys_walk_node_choice_target_refusals_and_back_with_esc(tmp_path: Path) -> None:
    app = wizard_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await polled(pilot)
        open_recovery(app, PRIMARY)
        await pilot.pause()
        step = app.screen
        assert isinstance(step, ServerStep)
        sources = step.query_one(OptionList)
        # the server on both sites, each with its window and RPO; the asked one highlighted
        assert [sources.get_option_at_index(i).id for i in range(2)] == [PRIMARY, PASSIVE]
        assert sources.highlighted == 0
        first = str(sources.get_option_at_index(0).prompt)
        assert "primary site" in first and "window 2026-11-30 17:56:33+00:00 →" in first
        assert "RPO 6s" in first
        assert "passive (geo) node" in str(sources.get_option_at_index(1).prompt)

        await pilot.press("down", "enter")  # the passive node
        target = app.screen
        assert isinstance(target, TargetStep)
        assert target.wiz.node == "geobserver"
        await pilot.press("escape")  # back to step 1, nothing chosen yet
        assert app.screen is step
        await pilot.press("up", "enter")
        target = app.screen
        assert isinstance(target, TargetStep) and target.wiz.node == "bserver"

        await pilot.press("down", "enter")  # kind "time": the cursor goes to the value
        assert app.focused is target.query_one("#target-value", Input)
        await type_text(pilot, "2026-11-30 18:05:00")
        await pilot.press("enter")
        assert isinstance(app.screen, TargetStep)
        assert "has no time zone" in error_line(target)
        assert "2026-11-30 18:05:00+00" in error_line(target)  # the fix is in the message

        target.query_one("#target-value", Input).value = ""
        await type_text(pilot, "2026-11-30 17:00:00+00")  # before the oldest backup's end
        await pilot.press("enter")
        assert isinstance(app.screen, TargetStep)
        assert "before the earliest consistent point" in error_line(target)
        assert "recoverable window on this node" in error_line(target)

        target.query_one("#target-value", Input).value = ""
        await type_text(pilot, "2026-11-30 19:00:00+01")  # = 18:00 UTC: inside the window
        await pilot.press("enter")
        backup = app.screen
        assert isinstance(backup, BackupStep)
        assert backup.wiz.target == parse_target("time=2026-11-30 19:00:00+01")
        why = str(backup.query_one("#backup-why", Static).render())
        assert "time=2026-11-30 19:00:00+01:00 (2026-11-30 18:00:00 UTC)" in why
        # this console has no connection to the node: the step says so, the app runs on
        await wait_for(pilot, lambda: "no connection to node bserver" in error_line(backup))
        assert backup.wiz.backup is None

        await pilot.press("escape", "escape", "escape")  # step 3 -> 2 -> 1 -> out
        assert isinstance(app.screen, FleetScreen)


async def test_latest_goes_straight_to_the_backup_step(tmp_path: Path) -> None:
    app = wizard_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await polled(pilot)
        open_recovery(app, None)
        await pilot.pause()
        assert isinstance(app.screen, ServerStep)
        await pilot.press("enter", "enter")  # first source, then "latest"
        step = app.screen
        assert isinstance(step, BackupStep)
        assert step.wiz.target is not None and step.wiz.target.kind == "latest"


# --- typed confirmation ---------------------------------------------------------------------------


async def test_typed_confirmation_refuses_a_wrong_name(tmp_path: Path) -> None:
    app = wizard_app(tmp_path)
    answers: list[bool | None] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await polled(pilot)
        app.push_screen(TypedConfirm("Recover?", ["into /x"], "pgserver"), answers.append)
        await pilot.pause()
        await type_text(pilot, "pgserve")
        await pilot.press("enter")
        modal = app.screen
        assert isinstance(modal, TypedConfirm) and answers == []
        assert "REFUSED: 'pgserve' is not 'pgserver'" in str(
            modal.query_one("#confirm-error", Static).render()
        )
        await type_text(pilot, "pgserver")
        await pilot.press("enter")
        assert answers == [True]
        app.push_screen(TypedConfirm("Recover?", ["into /x"], "pgserver"), answers.append)
        await pilot.pause()
        await pilot.press("escape")
        assert answers == [True, False]


# --- snapshots of each step (deterministic data) --------------------------------------------------

BackupStepFactory = Callable[[RecoveryServices, WizardState], Screen[None]]


def _state(app: DrConsoleApp, cfg: Config, key: str = PRIMARY) -> WizardState:
    return WizardState("pgserver", source_from_state(cfg, app.state.servers[key]))


def _with_backup(wiz: WizardState, target: str) -> WizardState:
    wiz.target = parse_target(target)
    backup, why = choose_backup(wiz.target, wiz.source.backups)
    wiz.backup, wiz.backup_why = backup, why
    return wiz


def _services(app: DrConsoleApp, tmp: Path) -> RecoveryServices:
    jobs = JobManager({"bserver": LocalTransport()}, Journal(tmp), app.config)
    return RecoveryServices(app.config, jobs)


def _fleet() -> FleetSnapshot:
    return lab_fleet()


def _planned(app: DrConsoleApp, services: RecoveryServices) -> WizardState:
    wiz = _with_backup(_state(app, app.config), "time=2026-11-30 18:05:00+00")
    assert wiz.backup is not None and wiz.target is not None
    wiz.backup = replace(wiz.backup, end_wal="000000010000000000000041")
    wiz.destination = Destination("/var/lib/postgresql/restore", host="pgserver", user="postgres")
    wiz.preflight = _report(ok=True)
    wiz.options = RecoveryOptions(
        target_action="promote", restore_host=RestoreHost("10.0.0.5", user="barman")
    )
    wiz.plan = build_plan(
        services.client("bserver"),
        node="bserver",
        server="pgserver",
        backup=wiz.backup,
        backup_why=wiz.backup_why,
        target=wiz.target,
        destination=wiz.destination,
        options=wiz.options,
    )
    return wiz


def _report(*, ok: bool):  # type: ignore[no-untyped-def]
    facts: dict[str, list[str]] = {"parent": ["/var/lib/postgresql"], "writable": ["1"],
                                   "avail_kb": ["52428800"]}  # fmt: skip
    if not ok:
        facts |= {"exists": ["dir"], "entries": ["2"], "sample": ["PG_VERSION base "]}
    return evaluate(
        facts,
        where="postgres@pgserver",
        destination="/var/lib/postgresql/restore",
        need_bytes=70 * 1024 * 1024,
        port=None,
    )


def _snap_step(make: Callable[[DrConsoleApp, RecoveryServices], Screen[None]], tmp: Path):  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[object]) -> None:
        app = await polled(pilot)
        app.push_screen(make(app, _services(app, tmp)))
        await quiet(pilot, app)

    return run_before


def test_snapshot_step1_server(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[object]) -> None:
        app = await polled(pilot)
        open_recovery(app, PRIMARY)
        await quiet(pilot, app)

    assert snap_compare(wizard_app(tmp_path), terminal_size=(80, 24), run_before=run_before)


def test_snapshot_step2_target_refused(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[object]) -> None:
        app = await polled(pilot)
        open_recovery(app, PRIMARY)
        await pilot.pause()
        await pilot.press("enter", "down", "enter")
        await type_text(pilot, "2026-11-30 18:05:00")
        await pilot.press("enter")
        await quiet(pilot, app)

    assert snap_compare(wizard_app(tmp_path), terminal_size=(80, 24), run_before=run_before)


def test_snapshot_step3_backup(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    def make(app: DrConsoleApp, services: RecoveryServices) -> Screen[None]:
        wiz = _with_backup(_state(app, app.config), "time=2026-11-30 18:05:00+00")
        return BackupStep(services, wiz)

    run_before = _snap_step(make, tmp_path)
    assert snap_compare(wizard_app(tmp_path), terminal_size=(80, 24), run_before=run_before)


def test_snapshot_step4_preflight_refused(
    snap_compare: Callable[..., bool], tmp_path: Path
) -> None:
    def make(app: DrConsoleApp, services: RecoveryServices) -> Screen[None]:
        wiz = _with_backup(_state(app, app.config), "latest")
        wiz.destination = Destination("/var/lib/postgresql/restore", "pgserver", "postgres")
        wiz.preflight = _report(ok=False)
        return DestinationStep(services, wiz)

    run_before = _snap_step(make, tmp_path)
    assert snap_compare(wizard_app(tmp_path), terminal_size=(80, 24), run_before=run_before)


def test_snapshot_step5_options(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    def make(app: DrConsoleApp, services: RecoveryServices) -> Screen[None]:
        return OptionsStep(services, _planned(app, services))

    run_before = _snap_step(make, tmp_path)
    assert snap_compare(wizard_app(tmp_path), terminal_size=(80, 24), run_before=run_before)


def test_snapshot_step6_review(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    def make(app: DrConsoleApp, services: RecoveryServices) -> Screen[None]:
        return ReviewStep(services, _planned(app, services))

    run_before = _snap_step(make, tmp_path)
    assert snap_compare(wizard_app(tmp_path), terminal_size=(80, 24), run_before=run_before)


def test_snapshot_step7_checklist(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    data = "/var/lib/postgresql/restore"
    conf = RestoredConf(
        data,
        {
            f"{data}/postgresql.conf": "listen_addresses = '*'\nport = 5432\n"
            "include_dir = 'conf.d'\n",
            f"{data}/postgresql.auto.conf": "restore_command = 'barman-wal-restore -P -U barman "
            "10.0.0.5 pgserver %f %p'\nrecovery_target_time = '2026-11-30 18:05:00+00'\n"
            "recovery_target_action = 'promote'\narchive_command = false\n",
            f"{data}/conf.d/archive.conf": "archive_command = 'barman-wal-archive b pg %p'\n",
        },
        {f"{data}/conf.d": ["archive.conf"]},
        ("recovery.signal",),
    )

    async def run_before(pilot: Pilot[object]) -> None:
        app = await polled(pilot)
        services = _services(app, tmp_path)
        step = RunStep(services, _planned(app, services), start=False)
        app.push_screen(step)
        await pilot.pause()
        log = step.query_one(RunLog)
        for line in ("Starting local restore for server pgserver using backup 20261130T180948",
                     "Destination directory: /var/lib/postgresql/restore",
                     "Copying the base backup.", "Recovery completed (start time: …)"):  # fmt: skip
            log.push(line)
        step.show_checklist(post_recovery_checklist(conf, remote=True))
        step.status("DONE: pgserver recovered (deterministic snapshot) · esc closes")
        await quiet(pilot, app)

    assert snap_compare(wizard_app(tmp_path), terminal_size=(80, 24), run_before=run_before)
