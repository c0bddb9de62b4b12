"""The compatibility subset: what every supported Barman must give, on a lab built with it,
for both of the lab's deployments: pgserver (rsync backups over ssh, archive_command and
streaming) and pgstream (backup_method = postgres, WAL by streaming only, no ssh to PostgreSQL).

`make test` runs these on the default lab (3.19.1) with the whole suite, then again on a fresh
lab for each other tested version (`DRCONSOLE_BARMAN_VERSION=3.4.0 pytest -m compat`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ground_truth import (
    LAB_SERVERS,
    SERVER,
    STREAM_SERVER,
    capabilities,
    meta_backups,
    wait_until,
    xlogdb_segments,
)
from test_headless_lab import drconsole

from dr_console.config import load_config
from dr_console.core.wal import segments_between
from dr_console.lab.lab import Lab
from dr_console.tui.app import DrConsoleApp
from dr_console.tui.launch import make_app
from dr_console.tui.widgets.fleet_table import FleetTable

pytestmark = [pytest.mark.integration, pytest.mark.compat]
each_server = pytest.mark.parametrize("server", LAB_SERVERS)


def status_doc(lab: Lab) -> dict[str, Any]:
    result = drconsole("--run", "status", "--format", "json", config=lab.config_path)
    assert result.returncode == 0, result.stdout + result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def server_of(doc: dict[str, Any], node: str, server: str = SERVER) -> dict[str, Any]:
    return next(s for s in doc["servers"] if s["node"] == node and s["server"] == server)


def test_a_healthy_lab_is_ok_headless_on_this_barman(lab: Lab) -> None:
    result = drconsole("--run", "check", "--format", "json", config=lab.config_path)
    doc = json.loads(result.stdout)
    bad = [c for c in doc["checks"] if c["status"] != "OK"]
    assert result.returncode == 0 and doc["status"] == "OK", bad
    checked = {(c["node"], c["server"]) for c in doc["checks"]}
    assert {(n, s) for n in ("bserver", "geobserver") for s in LAB_SERVERS} <= checked
    # the streaming-only server has no archive_command: its archiver is not judged
    queue = next(c for c in doc["checks"] if c["node"] == "bserver"
                 and c["server"] == STREAM_SERVER and c["check"] == "archive_queue")
    assert "streaming only" in queue["detail"], queue
    nagios = drconsole("--run", "check", "--format", "nagios", config=lab.config_path)
    assert nagios.returncode == 0 and nagios.stdout.startswith("DRCONSOLE OK - ")


@each_server
def test_status_names_the_version_and_matches_barmans_files(lab: Lab, server: str) -> None:
    version = lab.settings.barman_version
    before = {n: xlogdb_segments(lab, n, server)[-1] for n in ("bserver", "geobserver")}
    doc = status_doc(lab)
    after = {n: xlogdb_segments(lab, n, server)[-1] for n in ("bserver", "geobserver")}
    assert {n["node"]: n["barman_version"] for n in doc["nodes"]} == {
        "bserver": version, "geobserver": version,
    }
    for node in ("bserver", "geobserver"):
        entry = server_of(doc, node, server)
        assert entry["barman_version"] == version
        # the last archived WAL is a segment of the node's own catalogue (the lab is live)
        assert before[node] <= entry["last_archived_wal"] <= after[node], entry
        done = {i for i, s in meta_backups(lab, node, server).items() if s == "DONE"}
        assert {b["backup_id"] for b in entry["backups"] if b["status"] == "DONE"} == done
    geo = server_of(doc, "geobserver", server)["geo"]
    assert isinstance(geo["wal_lag_segments"], int) and geo["wal_lag_segments"] >= 0
    assert isinstance(geo["wal_lag_bytes"], int) and geo["wal_lag_seconds"] is not None
    bound = segments_between(before["geobserver"], after["bserver"])
    assert bound is not None and geo["wal_lag_segments"] <= bound + 1


@each_server
def test_backup_and_switch_wal_then_the_passive_node_catches_up(lab: Lab, server: str) -> None:
    backup = drconsole("--run", "backup", "--server", server, "--wait", config=lab.config_path,
                       timeout=600)
    assert backup.returncode == 0, backup.stdout + backup.stderr
    newest = max(meta_backups(lab, "bserver", server))
    assert meta_backups(lab, "bserver", server)[newest] == "DONE"
    with lab.cron_paused("geobserver"):
        switched = drconsole("--run", "switch-wal", "--server", server, config=lab.config_path)
        assert switched.returncode == 0, switched.stdout + switched.stderr
        assert "closed WAL" in switched.stdout and "archived on bserver" in switched.stdout
        closed = switched.stdout.split("closed WAL ", 1)[1].split(";")[0].strip()
        assert closed in xlogdb_segments(lab, "bserver", server)
        lagging = server_of(status_doc(lab), "geobserver", server)["geo"]
        assert lagging["wal_lag_segments"] >= 1, lagging
        assert newest in lagging["missing_backups"]
    wait_until(
        "the passive node to copy the new backup and WAL",
        lambda: (g := server_of(status_doc(lab), "geobserver", server)["geo"])[
            "wal_lag_segments"] == 0 and not g["missing_backups"],
        timeout=240, interval=5,
    )


@each_server
def test_drill_restores_starts_and_verifies(lab: Lab, server: str) -> None:
    result = drconsole("--run", "drill", "--server", server, "--verify",
                       "select count(*) from pg_class", "--format", "json",
                       config=lab.config_path, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["verified"] is True and int(doc["verify_result"]) > 0
    assert doc["cleaned_up"] is True and doc["rto_seconds"] > 0
    restore = next(i for i in doc["checklist"] if i["key"] == "restore_command")
    assert restore["status"] == "OK"
    if capabilities(lab).local_restore_command_uses_sudo:
        # Barman before 3.16 writes `sudo -u …`: corrected, and the checklist says so
        assert "corrected by drconsole" in restore["detail"] and "sudo" in restore["detail"]
    else:
        assert "sudo" not in restore["detail"]


async def test_the_console_shows_every_row_ok_within_one_poll(lab: Lab) -> None:
    app: DrConsoleApp = make_app(load_config(lab.config_path))
    async with app.run_test(size=(120, 40)) as pilot:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while app.polls < 1:
            assert loop.time() < deadline, "no poll finished within 120 s"
            await asyncio.sleep(0.1)
        await pilot.pause()
        table = app.screen.query_one(FleetTable)
        keys = {str(r.key.value) for r in table.ordered_rows}
        wanted = {f"{node}/{server}" for node in ("bserver", "geobserver")
                  for server in LAB_SERVERS}
        assert wanted <= keys
        for key in sorted(wanted):
            state = app.state.servers[key]
            assert state.health.label == "OK", (key, state.health_detail)
            assert state.snapshot.barman_version == lab.settings.barman_version


def test_a_backup_barman_is_running_is_refused_up_front(lab: Lab) -> None:
    """A backup started outside drconsole holds `.pgserver-backup.lock` in barman_home, as every
    supported Barman takes it; drconsole reads the lock table and refuses before starting."""
    lock = lab.barman_home("bserver") / f".{SERVER}-backup.lock"
    account = lab.account("bserver")  # as Barman's user: the lock file stays usable by Barman
    holder = subprocess.Popen(["setpriv", f"--reuid={account.uid}", f"--regid={account.gid}",
                               "--clear-groups", "flock", "--exclusive", str(lock),
                               "sleep", "60"], start_new_session=True)
    try:
        wait_until("the lock to be held", lambda: _held(lock), timeout=10, interval=0.2)
        result = drconsole("--run", "backup", "--server", SERVER, config=lab.config_path)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "refused" in result.stderr and "Another backup process is running" in (
            result.stderr
        )
    finally:
        # flock forks sleep, which inherits the locked descriptor: end the whole group, or the
        # lock outlives the test and the next backup in the suite is refused
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
        wait_until("the lock to be released", lambda: not _held(lock), timeout=10, interval=0.2)


def _held(path: Path) -> bool:
    inode = path.stat().st_ino if path.exists() else -1
    return any(line.split()[5].endswith(f":{inode}")
               for line in Path("/proc/locks").read_text().splitlines()
               if len(line.split()) > 5)


def test_a_delete_barman_refuses_for_minimum_redundancy_says_why(
    lab: Lab, tmp_path: Path
) -> None:
    """Barman prints its reason as a WARNING, then only "Cannot delete backup": the job's error
    must be the reason, as the console shows it."""
    from dr_console.core.barman import BarmanClient
    from dr_console.core.jobs import JobManager
    from dr_console.core.journal import Journal
    from dr_console.core.transport import open_transport

    server = STREAM_SERVER
    conf = lab.node_home("bserver") / "barman.d" / f"{server}.conf"
    original = conf.read_text()
    config = load_config(lab.config_path)
    node = config.node("bserver")
    backups = meta_backups(lab, "bserver", server)
    done = sorted(b for b, status in backups.items() if status == "DONE")
    assert done, backups
    conf.write_text(original + "minimum_redundancy = 99\n")

    async def delete() -> tuple[str | None, str]:
        transport = open_transport(node, connect_timeout=10)
        try:
            client = BarmanClient(transport, barman=node.barman, config_file=node.barman_config)
            manager = JobManager({node.name: transport}, Journal(tmp_path / "j"), config)
            job = await manager.start(node.name, server, "delete",
                                      client.delete_argv(server, done[0]))  # fmt: skip
            async for _line in manager.tail(job, from_start=True):
                pass
            await manager.wait(job, poll=0.5)
            ended = await manager.get(node.name, job.job_id)
            return manager.progress(ended).error, ended.state.value
        finally:
            await transport.close()

    try:
        error, state = asyncio.run(delete())
    finally:
        conf.write_text(original)
    assert state == "failed"
    assert error == (
        f"Barman did not delete backup {done[0]}: server {server} must keep at least 99 "
        f"backups (minimum_redundancy = 99) and has {len(done)}; take a new backup first, or "
        "lower minimum_redundancy in the server's Barman configuration"
    )
    assert meta_backups(lab, "bserver", server).get(done[0]) == "DONE"
