"""The recovery walkthrough on the lab, with the keyboard only: the real console (make_app: real
Collector, JobManager over ssh), pre-flight refusals from the real destination hosts, the typed
confirmation, a PITR run as a job with its live log and the checklist read from the restored
files, and a drill with its measured RTO. Every directory made here is removed.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections.abc import Callable, Iterator

import pytest
from ground_truth import capabilities
from test_recovery_lab import TEST_PORTS, make_table, switch_wal, utc_now
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input, Static

from dr_console.config import load_config
from dr_console.core.restored import RestoredInstance, start_on_a_free_port
from dr_console.core.transport import open_transport
from dr_console.lab.lab import Lab
from dr_console.tui.app import DrConsoleApp
from dr_console.tui.launch import make_app
from dr_console.tui.screens.recovery import (
    BackupStep,
    DestinationStep,
    OptionsStep,
    ReviewStep,
    ServerStep,
    TargetStep,
    open_recovery,
)
from dr_console.tui.screens.recovery_run import DrillStep, RunLog, RunStep, TypedConfirm
from tests.tui.helpers import type_text

pytestmark = pytest.mark.integration

SERVER = "pgserver"
KEY = f"bserver/{SERVER}"
BINDIR = "/usr/lib/postgresql/15/bin"


async def until(
    pilot: Pilot[object], condition: Callable[[], bool], timeout: float, what: str
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        await pilot.pause(0.1)
    await pilot.pause()


def shown(screen: Screen[object], selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def retype(pilot: Pilot[object], field: Input, text: str) -> None:
    field.value = ""
    await type_text(pilot, text)
    await pilot.press("enter")


@pytest.fixture
def workdir(lab: Lab) -> Iterator[str]:
    """A fresh directory name in the Barman user's home on bserver, removed at the end."""
    home = lab.settings.home_of(lab.settings.host_users["bserver"])
    path = f"{home}/wiztest-{secrets.token_hex(4)}"
    assert re.fullmatch(r"/var/tmp/drconsole-lab[-0-9]*/home/[a-z0-9-]+/wiztest-[0-9a-f]{8}", path)
    yield path
    lab.run_as("bserver", ["rm", "-rf", "--", path], check=False)


async def _to_destination(pilot: Pilot[object], app: DrConsoleApp, target: str) -> DestinationStep:
    await until(pilot, lambda: KEY in app.state.servers, 120, "first poll")
    open_recovery(app, KEY)
    await pilot.pause()
    assert isinstance(app.screen, ServerStep)
    await pilot.press("enter")  # the primary site (highlighted)
    step = app.screen
    assert isinstance(step, TargetStep)
    if target == "latest":
        await pilot.press("enter")
    else:
        await pilot.press("down", "enter")  # time
        await type_text(pilot, target)
        await pilot.press("enter")
    backup = app.screen
    assert isinstance(backup, BackupStep), shown(step, "#wizard-error")

    def chosen_or_failed() -> bool:
        return backup.wiz.backup is not None or bool(shown(backup, "#wizard-error"))

    await until(pilot, chosen_or_failed, 120, "backup choice")
    assert backup.wiz.backup is not None, shown(backup, "#wizard-error")
    assert "chosen: " in shown(backup, "#backup-why")
    await pilot.press("enter")  # the highlighted (automatic) one
    dest = app.screen
    assert isinstance(dest, DestinationStep)
    return dest


async def _preflight(pilot: Pilot[object], dest: DestinationStep, text: str) -> str:
    await retype(pilot, dest.query_one("#destination", Input), text)

    def done() -> bool:
        return dest.wiz.preflight is not None or "failed" in shown(dest, "#wizard-error")

    await until(pilot, done, 60, "pre-flight")
    return shown(dest, "#preflight") + shown(dest, "#wizard-error")


async def _confirmed_run(pilot: Pilot[object], app: DrConsoleApp, key: str,
                         step: type[RunStep | DrillStep], timeout: float,
                         what: str) -> tuple[str, str]:
    """From the review: KEY, the server's name typed to confirm, then STEP until it ends;
    its status and result lines."""
    await pilot.press(key)
    assert isinstance(app.screen, TypedConfirm)
    await type_text(pilot, SERVER)
    await pilot.press("enter")
    running = app.screen
    assert isinstance(running, step)
    await until(pilot, lambda: not running.running, timeout, what)
    status, result = shown(running, "#run-status"), shown(running, "#run-result")
    print(f"\nwizard {what}:\n{status}\n{result}")
    return status, result


async def test_pitr_from_keys_refusals_typed_confirmation_run_and_checklist(
    lab: Lab, workdir: str
) -> None:
    table = make_table(lab, 100)
    time.sleep(1.2)
    target = utc_now(lab)
    time.sleep(1.2)
    lab.psql(f"insert into {table} select generate_series(101, 150)")
    switch_wal(lab)
    lab.run_as("bserver", ["mkdir", "-p", f"{workdir}/full"], check=True)
    lab.run_as("bserver", ["touch", f"{workdir}/full/precious"], check=True)

    app = make_app(load_config(lab.config_path))
    async with app.run_test(size=(80, 24)) as pilot:
        dest = await _to_destination(pilot, app, target)

        # a non-empty directory, then the live primary's data directory: both refused
        out = await _preflight(pilot, dest, f"{workdir}/full")
        assert "REFUSED" in out and "is not empty (1 entries: precious" in out, out
        await pilot.press("enter")  # enter again does not go on after a refusal
        assert app.screen is dest
        out = await _preflight(pilot, dest, f"{lab.settings.pg_user}@pgserver:{lab.pg_data}")
        assert "REFUSED" in out and "a PostgreSQL server is running" in out, out

        out = await _preflight(pilot, dest, f"{workdir}/data")
        assert "pre-flight passed" in out, out
        assert "REFUSED" not in out
        await pilot.press("enter")
        options = app.screen
        assert isinstance(options, OptionsStep)
        # target action: down to "promote", select; then to the jobs field and on to the review
        await pilot.press("tab", "tab", "down", "enter", "tab", "enter")
        review = app.screen
        assert isinstance(review, ReviewStep), shown(options, "#wizard-error")
        text = shown(review, "#review")
        plan = review.wiz.plan
        assert plan is not None and plan.options.target_action == "promote"
        verb = capabilities(lab).restore_verb  # restore from Barman 3.12, recover before
        assert f"barman {verb} --target-time" in text and f"{workdir}/data" in text

        await pilot.press("escape")  # back to the options, nothing ran
        assert app.screen is options
        await pilot.press("tab", "enter")  # jobs field -> review again
        review = app.screen
        assert isinstance(review, ReviewStep)
        await pilot.press("enter")
        assert isinstance(app.screen, TypedConfirm)
        await type_text(pilot, "pgother")
        await pilot.press("enter")
        assert isinstance(app.screen, TypedConfirm)  # refused: still asking, nothing ran
        assert lab.run_as("bserver", ["test", "-e", f"{workdir}/data"]).returncode != 0
        await type_text(pilot, SERVER)
        await pilot.press("enter")
        run = app.screen
        assert isinstance(run, RunStep)
        await pilot.press("escape")  # refused while running
        assert app.screen is run
        started = time.monotonic()
        await until(pilot, lambda: not run.running, 600, "recovery")
        seconds = time.monotonic() - started
        status = shown(run, "#run-status")
        result = shown(run, "#run-result")
        print(f"\nwizard PITR recovery: {seconds:.1f} s\n{status}\n{result}")
        assert status.startswith("DONE"), status + result
        assert run.query_one(RunLog).received > 0
        assert "OK       recovery signal file" in result
        assert re.search(r"OK +archiving disabled", result), result
        assert (
            "recovery_target_time"
            in lab.run_as("bserver", ["cat", f"{workdir}/data/postgresql.auto.conf"]).stdout
        )
        await pilot.press("escape")  # done: esc closes the whole walkthrough
        assert not isinstance(app.screen, (ServerStep, RunStep))

    # the restored instance holds exactly the first change: PITR to the typed time, promoted
    node = open_transport(load_config(lab.config_path).node("bserver"), connect_timeout=10)
    inst = RestoredInstance(
        node, BINDIR, f"{workdir}/data", workdir, TEST_PORTS.start, f"{workdir}/postgres.log"
    )
    try:
        inst = await start_on_a_free_port(inst, TEST_PORTS, timeout=60, command_timeout=30)
        state = await inst.wait_replayed(timeout=120)
        assert not state.in_recovery
        assert await inst.query(f"select count(*) from {table}", timeout=30) == "100"
    finally:
        with contextlib.suppress(Exception):
            await inst.stop(timeout=30)
        await node.close()


async def test_drill_from_keys_reports_rto(lab: Lab) -> None:
    app = make_app(load_config(lab.config_path))
    async with app.run_test(size=(80, 24)) as pilot:
        dest = await _to_destination(pilot, app, "latest")
        out = await _preflight(pilot, dest, "/var/tmp/drconsole-wizard-unused")
        assert "pre-flight passed" in out, out
        await pilot.press("enter")
        assert isinstance(app.screen, OptionsStep)
        await pilot.press("tab", "tab", "enter")  # copy-wal, standby, jobs field: enter -> review
        assert isinstance(app.screen, ReviewStep)
        status, result = await _confirmed_run(pilot, app, "d", DrillStep, 900, "drill")
        assert status.startswith("DONE: drill RTO"), status + result
        assert re.search(r"RTO +[0-9.]+ s \(recover [0-9.]+ s \+ replay [0-9.]+ s\)", result)
        assert "verified        yes" in result and "cleaned up      yes" in result


@pytest.fixture
def pg_workdir(lab: Lab) -> Iterator[str]:
    """A fresh directory name in the PostgreSQL user's home on pgserver, removed at the end."""
    home = lab.settings.host_home("pgserver")
    path = f"{home}/wiztest-{secrets.token_hex(4)}"
    assert re.fullmatch(r"/var/tmp/drconsole-lab[-0-9a-z]*/home/[a-z0-9-]+/wiztest-[0-9a-f]{8}",
                        path)
    yield path
    lab.run_as("pgserver", ["rm", "-rf", "--", path], check=False)


async def test_remote_recovery_from_keys_names_the_barman_host_in_restore_command(
    lab: Lab, pg_workdir: str
) -> None:
    """USER@HOST:PATH in the destination field: pre-flight on that host, the plan's
    --remote-ssh-command, and a restore_command that fetches WAL from bserver (never localhost),
    checked in the files the recovery wrote on pgserver."""
    pg_user = lab.settings.pg_user
    app = make_app(load_config(lab.config_path))
    async with app.run_test(size=(80, 24)) as pilot:
        dest = await _to_destination(pilot, app, "latest")
        lab.run_as("pgserver", ["mkdir", "-p", f"{pg_workdir}/full"], check=True)
        lab.run_as("pgserver", ["touch", f"{pg_workdir}/full/precious"], check=True)
        out = await _preflight(pilot, dest, f"{pg_user}@pgserver:{pg_workdir}/full")
        assert "REFUSED" in out and "is not empty (1 entries: precious" in out, out
        out = await _preflight(pilot, dest, f"{pg_user}@pgserver:{pg_workdir}/data")
        assert "pre-flight passed" in out and "REFUSED" not in out, out
        await pilot.press("enter")
        assert isinstance(app.screen, OptionsStep)
        await pilot.press("tab", "tab", "enter")  # copy-wal, standby, jobs field -> review
        review = app.screen
        assert isinstance(review, ReviewStep), shown(app.screen, "#wizard-error")
        text = shown(review, "#review")
        assert f"--remote-ssh-command 'ssh {pg_user}@pgserver'" in text, text
        status, result = await _confirmed_run(pilot, app, "enter", RunStep, 600,
                                              "remote recovery")
        assert status.startswith("DONE"), status + result
        assert re.search(r"OK +restore_command: 'barman-wal-restore -P -U \S+ bserver "
                         rf"{SERVER} %f %p'", result), result
        assert "localhost" not in result
    auto = lab.run_as("pgserver", ["cat", f"{pg_workdir}/data/postgresql.auto.conf"]).stdout
    assert re.search(r"restore_command = 'barman-wal-restore -P -U \S+ bserver", auto), auto
    # Written on pgserver by the recovery, owned by the PostgreSQL user there.
    owner = lab.run_as("pgserver", ["stat", "-c", "%U", f"{pg_workdir}/data/PG_VERSION"])
    assert owner.stdout.strip() == pg_user
