"""`drconsole --run backup|switch-wal|cron|jobs` on the real lab."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ground_truth import SERVER, barman_processes, meta_backups, wait_until, xlogdb_segments

from dr_console.lab.lab import Lab

pytestmark = pytest.mark.integration


def _argv(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "dr_console.cli", "-c", str(config), *args]


def drconsole(config: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        _argv(config, *args), capture_output=True, text=True, timeout=timeout, check=False
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _no_backup_running(lab: Lab) -> None:
    wait_until(
        "other backups to finish",
        lambda: not any(n == "backup" for n, _ in barman_processes(lab, "bserver")),
        timeout=300,
    )


def test_backup_wait_streams_live_and_the_backup_appears(lab: Lab) -> None:
    _no_backup_running(lab)
    before = set(meta_backups(lab, "bserver"))
    proc = subprocess.Popen(
        _argv(lab.config_path, "--run", "backup", "--server", SERVER, "--wait"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[tuple[str, bool]] = []  # (line, was the command still running when it arrived)
    for line in proc.stdout:
        lines.append((line.rstrip("\n"), proc.poll() is None))
    stderr = proc.stderr.read() if proc.stderr else ""
    assert proc.wait(timeout=300) == 0, stderr
    text = [line for line, _ in lines]
    assert any(line.startswith("job ") and "started on bserver" in line for line in text)
    barman_lines = [(line, live) for line, live in lines if "Starting backup" in line]
    assert barman_lines and barman_lines[0][1], "Barman's output arrived only at the end"
    assert text[-1].startswith("backup job ") and text[-1].endswith("succeeded")
    new = set(meta_backups(lab, "bserver")) - before
    assert len(new) == 1 and meta_backups(lab, "bserver")[new.pop()] == "DONE"

    status = drconsole(lab.config_path, "--run", "status", "--format", "json", "--node", "bserver")
    ids = [b["backup_id"] for b in json.loads(status.stdout)["servers"][0]["backups"]]
    assert max(meta_backups(lab, "bserver")) in ids

    jobs = drconsole(lab.config_path, "--run", "jobs", "--format", "json", "--node", "bserver")
    assert jobs.returncode == 0
    listed = json.loads(jobs.stdout)["jobs"]
    assert listed[0]["operation"] == "backup" and listed[0]["state"] == "succeeded"
    assert listed[0]["exit_status"] == 0 and listed[0]["argv"][-1] == SERVER


def test_a_second_backup_is_refused_with_the_reason(lab: Lab) -> None:
    _no_backup_running(lab)
    first = subprocess.Popen(
        _argv(lab.config_path, "--run", "backup", "--server", SERVER, "--wait"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            "the first backup to hold Barman's lock",
            lambda: any(n == "backup" for n, _ in barman_processes(lab, "bserver")),
            timeout=60,
            interval=0.2,
        )
        second = drconsole(lab.config_path, "--run", "backup", "--server", SERVER)
        assert second.returncode == 2
        assert "refused" in second.stderr and "already running" in second.stderr
    finally:
        assert first.wait(timeout=300) == 0


def test_of_backups_started_at_the_same_moment_exactly_one_starts(lab: Lab) -> None:
    _no_backup_running(lab)
    jobs = lab.node_home("bserver") / ".drconsole" / "jobs"
    before = {d.name for d in jobs.iterdir()} if jobs.exists() else set()
    procs = [
        subprocess.Popen(
            _argv(lab.config_path, "--run", "backup", "--server", SERVER, "--wait"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=400) for p in procs]
    results = [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]
    started = [r for r in results if r[0] == 0]
    refused = [r for r in results if r[0] != 0]
    assert len(started) == 1, results
    for rc, _out, err in refused:
        assert rc == 2 and err.startswith("drconsole: refused: "), (rc, err)
        assert "Traceback" not in err
    new = {d.name for d in jobs.iterdir()} - before
    assert len(new) == 1, f"{len(new)} backup jobs were started: {sorted(new)}"


def test_a_backup_of_a_server_the_node_lacks_is_refused_before_any_job(lab: Lab) -> None:
    jobs = lab.node_home("bserver") / ".drconsole" / "jobs"
    before = {d.name for d in jobs.iterdir()} if jobs.exists() else set()
    result = drconsole(lab.config_path, "--run", "backup", "--server", "nosuchserver")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "has no server 'nosuchserver'" in result.stderr and "nothing was started" in (
        result.stderr)
    assert ({d.name for d in jobs.iterdir()} if jobs.exists() else set()) == before


def test_switch_wal_reports_the_closed_wal_archived_on_the_node(lab: Lab) -> None:
    lab.psql("create temporary table t as select 1 as x")  # something to close
    result = drconsole(lab.config_path, "--run", "switch-wal", "--server", SERVER)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("closed WAL ") and last.endswith("archived on bserver")
    closed = last.split()[2].rstrip(";")
    assert closed in xlogdb_segments(lab, "bserver")  # independently: it is in Barman's catalogue


def test_operations_are_refused_where_they_do_not_apply(lab: Lab) -> None:
    passive = drconsole(lab.config_path, "--run", "switch-wal", "--server", SERVER,
                        "--node", "geobserver")  # fmt: skip
    assert passive.returncode == 2 and passive.stdout == ""
    assert "passive Barman node" in passive.stderr and "EXCEPTION" not in passive.stderr
    for operation in ("backup", "switch-wal", "cron"):
        refused = drconsole(lab.config_path, "--readonly", "--run", operation, "--server", SERVER)
        assert refused.returncode == 2 and "read-only" in refused.stderr
    assert drconsole(lab.config_path, "--readonly", "--run", "jobs").returncode == 0
    missing = drconsole(lab.config_path, "--run", "backup")
    assert missing.returncode == 3 and "--server" in missing.stderr


def test_cron_runs_on_every_node(lab: Lab) -> None:
    result = drconsole(lab.config_path, "--run", "cron")
    assert result.returncode == 0, result.stderr
    by_node: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        node, _, text = line.partition(": ")
        by_node.setdefault(node, []).append(text)
    assert set(by_node) == {"bserver", "geobserver"}
    assert any("Starting WAL archiving for server pgserver" in t for t in by_node["bserver"])
