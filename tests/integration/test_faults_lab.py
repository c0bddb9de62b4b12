"""Faults on the real lab: what the user sees while a part is broken, and that it comes back.

Each test breaks one thing for real (a node's sshd, PostgreSQL, a hanging barman, a full disk)
and restores it in `finally`. Run these on a lab of your own: DRCONSOLE_LAB_SLOT=N.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fault_helpers import (
    cell,
    checks_of,
    details_of,
    drconsole,
    lab_config,
    until,
    with_node,
    write_config,
)
from ground_truth import SERVER, ensure_streaming, wait_until, xlogdb_segments

from dr_console.core.journal import read_journal_report
from dr_console.lab.lab import Lab
from dr_console.models import Health
from dr_console.tui.app import DrConsoleApp
from dr_console.tui.launch import make_app
from dr_console.tui.screens.help import HelpScreen
from dr_console.tui.widgets.fleet_table import FleetTable

pytestmark = pytest.mark.integration

PRIMARY_KEY, PASSIVE_KEY = f"bserver/{SERVER}", f"geobserver/{SERVER}"


def _fast(lab: Lab, **more: object) -> dict[str, object]:
    return {"refresh_interval": 1.0, "connect_timeout": 5.0, "command_timeout": 20.0} | more


# --- a node's sshd stopped, then started ----------------------------------------------------


def test_node_sshd_stopped_is_unknown_headless_and_the_rest_reports(
    lab: Lab, tmp_path: Path
) -> None:
    config = write_config(lab_config(lab, connect_timeout=5.0), tmp_path / "c.toml")
    ensure_streaming(lab)  # the healthy starting point this test compares against
    lab.sshd_stop_node("geobserver")
    try:
        down = drconsole(config, "--run", "check", "--format", "json", timeout=120)
    finally:
        lab.sshd_start_node("geobserver")
    checks, details = checks_of(down), details_of(down)
    assert checks[("geobserver", None, "node_reachable")] == "UNKNOWN"
    assert lab.settings.geo_address in details[("geobserver", None, "node_reachable")]
    assert checks[("bserver", None, "node_reachable")] == "OK"
    assert checks[("bserver", SERVER, "receive_wal")] == "OK"
    back = drconsole(config, "--run", "check", "--format", "json", timeout=120)
    assert checks_of(back)[("geobserver", None, "node_reachable")] == "OK"


async def test_node_sshd_stopped_then_back_in_the_console_without_restart(lab: Lab) -> None:
    app: DrConsoleApp = make_app(lab_config(lab, **_fast(lab)))
    async with app.run_test(size=(140, 40)) as pilot:
        table = app.screen.query_one(FleetTable)
        await until(lambda: {PRIMARY_KEY, PASSIVE_KEY} <= set(app.state.servers), 120, "rows")
        await asyncio.to_thread(lab.sshd_stop_node, "geobserver")
        try:
            geo = app.state.servers[PASSIVE_KEY]
            await until(lambda: geo.node_error is not None, 60, "geobserver unreachable")
            await pilot.pause()
            assert cell(table, PASSIVE_KEY, "health").startswith("UNKNOWN")
            assert lab.settings.geo_address in (geo.node_error or "")
            # the rest of the fleet keeps updating while the node is down
            primary = app.state.servers[PRIMARY_KEY]
            seen: datetime = primary.snapshot.taken_at
            await until(lambda: primary.snapshot.taken_at > seen, 30, "bserver updates")
            assert primary.node_error is None and geo.node_error is not None
        finally:
            await asyncio.to_thread(lab.sshd_start_node, "geobserver")
        # the transport reconnects on its own (bounded back-off): no restart of the console
        await until(lambda: app.state.servers[PASSIVE_KEY].node_error is None, 90, "geo back")
        await pilot.pause()
        assert not cell(table, PASSIVE_KEY, "health").startswith("UNKNOWN")
        await pilot.press("q")


# --- PostgreSQL stopped -----------------------------------------------------------------------


async def test_postgres_stopped_is_shown_in_the_console_and_headless_then_recovers(
    lab: Lab, tmp_path: Path
) -> None:
    config = lab_config(lab, **_fast(lab))
    path = write_config(config, tmp_path / "c.toml")
    app: DrConsoleApp = make_app(config)
    async with app.run_test(size=(140, 40)) as pilot:
        await until(lambda: PRIMARY_KEY in app.state.servers, 120, "rows")
        await asyncio.to_thread(lab.pg_stop)
        try:
            primary = app.state.servers[PRIMARY_KEY]

            def pg_down_seen() -> bool:
                stream = primary.snapshot.wal_stream
                return stream is not None and stream.error is not None

            await until(pg_down_seen, 60, "the WAL stream pane to report PostgreSQL down")
            await pilot.pause()
            stream = primary.snapshot.wal_stream
            assert stream is not None and stream.error
            assert str(lab.settings.pg_port) in stream.error or "refused" in stream.error
            assert primary.health is not Health.OK
            assert app.is_running  # no crash: the console is still up and answering keys
            headless = drconsole(path, "--run", "check", "--format", "json", timeout=180)
            assert headless.returncode in (1, 2, 3), headless.stdout
            assert "PostgreSQL" in headless.stdout or "connect" in headless.stdout
        finally:
            await asyncio.to_thread(lab.pg_start)
        await until(
            lambda: (
                (s := app.state.servers[PRIMARY_KEY].snapshot.wal_stream) is not None
                and s.error is None
            ),
            90,
            "the WAL stream pane to recover",
        )
        await pilot.press("q")
    # Barman's side recovers with the next cron (receive-wal restarts)
    lab.barman("bserver", "cron", json=False)


# --- a Barman command that hangs ---------------------------------------------------------------


@pytest.fixture
def hanging_barman(lab: Lab) -> Iterator[str]:
    """A `barman` on the node that sleeps for five minutes (readable by the lab users)."""
    path = lab.settings.base_dir / "hanging-barman"
    path.write_text("#!/bin/sh\nexec sleep 300\n")
    path.chmod(0o755)
    try:
        yield str(path)
    finally:
        path.unlink(missing_ok=True)
        # its sleeps run as the node user; the transport timeout already killed them
        subprocess.run(["pkill", "-u", lab.settings.barman_user, "-f", "^sleep 300$"],
                       check=False, timeout=10)  # fmt: skip


def test_a_hanging_barman_times_out_with_a_clear_message_headless(
    lab: Lab, tmp_path: Path, hanging_barman: str
) -> None:
    config = with_node(lab_config(lab, command_timeout=4.0), "bserver", barman=hanging_barman)
    path = write_config(config, tmp_path / "c.toml")
    result = drconsole(path, "--run", "status", "--format", "json", "--node", "bserver",
                       timeout=90)  # fmt: skip
    assert result.returncode == 3
    node = json.loads(result.stdout)["nodes"][0]
    assert node["node"] == "bserver" and node["reachable"] is False
    # the first Barman call of a poll reads the node's version: that is the one that hangs
    assert node["error"] == (
        f"barman --version: `{hanging_barman} --version` on bserver did not finish within 4 s "
        "and was stopped"
    )


async def test_the_console_answers_keys_while_a_barman_call_hangs(
    lab: Lab, hanging_barman: str
) -> None:
    config = with_node(lab_config(lab, **_fast(lab, command_timeout=15.0)), "bserver",
                       barman=hanging_barman)  # fmt: skip
    app: DrConsoleApp = make_app(config)
    async with app.run_test(size=(140, 40)) as pilot:
        await until(lambda: app._polling, 10, "the first poll to start")
        started = asyncio.get_running_loop().time()
        await pilot.press("question_mark")
        await until(lambda: isinstance(app.screen, HelpScreen), 5, "the help screen")
        assert app._polling, "the key was answered only after the poll ended"
        await pilot.press("escape")
        await until(lambda: not isinstance(app.screen, HelpScreen), 5, "help closed")
        assert app._polling and asyncio.get_running_loop().time() - started < 15
        # then the poll ends with the node's error, not a frozen or dead console
        await until(lambda: app.polls >= 1, 60, "the poll to end")
        snap = app.state.fleet.nodes["bserver"] if app.state.fleet else None
        assert snap is not None and not snap.reachable
        assert "did not finish within 15 s and was stopped" in (snap.error or "")
        await pilot.press("q")


# --- the passive node's sync stopped: geo lag in the console -----------------------------------


async def test_geo_lag_turns_warning_then_critical_then_ok_in_the_console(lab: Lab) -> None:
    from dr_console.config import Thresholds

    thresholds = Thresholds(geo_lag_segments=1, geo_lag_segments_critical=3)
    config = lab_config(lab, **_fast(lab, thresholds=thresholds))
    app: DrConsoleApp = make_app(config)

    def lag() -> int:
        passive = xlogdb_segments(lab, "geobserver")[-1]
        return int(xlogdb_segments(lab, "bserver")[-1], 16) - int(passive, 16)

    def switch() -> None:
        lab.barman("bserver", "switch-wal", "--force", "--archive", SERVER, json=False)

    async with app.run_test(size=(140, 40)) as pilot:
        table = app.screen.query_one(FleetTable)
        await until(lambda: PASSIVE_KEY in app.state.servers, 120, "rows")
        await asyncio.to_thread(lab.pause_cron, "geobserver")
        try:
            while await asyncio.to_thread(lag) < 1:
                await asyncio.to_thread(switch)
            geo = app.state.servers[PASSIVE_KEY]
            if await asyncio.to_thread(lag) < 3:
                await until(lambda: geo.health is Health.WARNING, 60, "WARNING")
                await pilot.pause()
                assert cell(table, PASSIVE_KEY, "health").startswith("WARNING")
            while await asyncio.to_thread(lag) < 3:
                await asyncio.to_thread(switch)
            await until(lambda: geo.health is Health.CRITICAL, 60, "CRITICAL")
            await pilot.pause()
            assert cell(table, PASSIVE_KEY, "health").startswith("CRITICAL")
        finally:
            await asyncio.to_thread(lab.resume_cron, "geobserver")

        def synced() -> bool:
            lab.barman("geobserver", "cron", json=False)
            return lag() <= 0

        await asyncio.to_thread(wait_until, "the passive to catch up", synced, 180, 3)
        await until(lambda: app.state.servers[PASSIVE_KEY].health is not Health.CRITICAL, 60,
                    "geo lag back to OK")  # fmt: skip
        await pilot.pause()
        assert "geo_wal_lag" not in app.state.servers[PASSIVE_KEY].health_detail
        await pilot.press("q")


# --- a full disk on the job directory (node) and on the journal directory (console) -----------


@pytest.fixture
def tiny_fs(lab: Lab) -> Iterator[Path]:
    """A 64 KiB tmpfs inside the lab's base directory (which the lab users can traverse)."""
    mnt = lab.settings.base_dir / f"tiny-{uuid.uuid4().hex[:8]}"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(mnt)],
                          capture_output=True, timeout=10, check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=10, check=False)
        mnt.rmdir()


def _fill(directory: Path) -> None:
    subprocess.run(["dd", "if=/dev/zero", f"of={directory / 'filler'}", "bs=4k"],
                   capture_output=True, timeout=30, check=False)  # fmt: skip


def _journal_lines(path: Path) -> bytes:
    return path.read_bytes() if path.exists() else b""


def test_full_job_directory_on_the_node_fails_the_job_with_the_reason(
    lab: Lab, tmp_path: Path, tiny_fs: Path
) -> None:
    account = lab.account("bserver")
    jobs = tiny_fs / "jobs"
    jobs.mkdir()
    os.chown(jobs, account.uid, account.gid)
    os.chown(tiny_fs, account.uid, account.gid)
    lab.run_as("bserver", ["dd", "if=/dev/zero", f"of={tiny_fs / 'filler'}", "bs=4k"])
    config = with_node(lab_config(lab, journal_dir=str(tmp_path / "journal")), "bserver",
                       job_dir=str(jobs))  # fmt: skip
    path = write_config(config, tmp_path / "c.toml")
    result = drconsole(path, "--run", "backup", "--server", SERVER, "--node", "bserver")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "could not start on bserver" in result.stderr
    assert "No space left on device" in result.stderr
    journal = tmp_path / "journal" / "journal.jsonl"
    report = read_journal_report(journal) if journal.exists() else None
    assert report is None or (report.problems == [] and not report.records)


def test_full_journal_directory_refuses_the_operation_and_keeps_the_journal(
    lab: Lab, tmp_path: Path, tiny_fs: Path
) -> None:
    job_dir = lab.node_home("bserver") / f"fulljobs-{tiny_fs.name}"
    config = with_node(lab_config(lab, journal_dir=str(tiny_fs)), "bserver", job_dir=str(job_dir))
    path = write_config(config, tmp_path / "c.toml")
    # a journal with history, then the disk fills up
    jobs = drconsole(path, "--run", "jobs", "--node", "bserver")
    assert jobs.returncode == 0, jobs.stderr
    journal = tiny_fs / "journal.jsonl"
    journal.write_bytes(_journal_lines(journal))
    _fill(tiny_fs)
    before = _journal_lines(journal)
    result = drconsole(path, "--run", "switch-wal", "--server", SERVER, "--node", "bserver")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "No space left on device" in result.stderr and "journal" in result.stderr
    assert _journal_lines(journal) == before
    assert read_journal_report(journal).problems == []
    # nothing ran unrecorded on the node
    ran = list(job_dir.iterdir()) if job_dir.exists() else []
    shutil.rmtree(job_dir, ignore_errors=True)
    assert ran == [], f"a job ran on the node without its journal record: {ran}"
