"""`drconsole --run check|status` on the real lab, through the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ground_truth import SERVER, barman_processes, meta_backups, wait_until, xlogdb_segments

from dr_console.lab.lab import Lab

pytestmark = pytest.mark.integration


def drconsole(
    *args: str, config: Path | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "dr_console.cli"]
    if config is not None:
        argv += ["-c", str(config)]
    env = {k: v for k, v in os.environ.items() if k != "DRCONSOLE_CONFIG"}
    result = subprocess.run(
        [*argv, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def with_thresholds(lab: Lab, tmp_path: Path, **limits: object) -> Path:
    extra = "\n[console.thresholds]\n" + "".join(f"{k} = {v!r}\n" for k, v in limits.items())
    path = tmp_path / "drconsole.toml"
    path.write_text(lab.config_path.read_text() + extra.replace("'", '"'))
    path.chmod(0o600)
    return path


def checks_of(result: subprocess.CompletedProcess[str]) -> dict[tuple[str, str | None, str], str]:
    doc = json.loads(result.stdout)
    return {(c["node"], c["server"], c["check"]): c["status"] for c in doc["checks"]}


def test_check_on_a_healthy_lab_is_ok_in_every_format(lab: Lab) -> None:
    as_json = drconsole("--run", "check", "--format", "json", config=lab.config_path)
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    doc = json.loads(as_json.stdout)
    assert doc["status"] == "OK"
    assert doc["generated_at"].endswith("+00:00")
    names = {(c["node"], c["check"]) for c in doc["checks"]}
    assert {
        ("bserver", "receive_wal"),
        ("bserver", "backup_age"),
        ("bserver", "stream_lag"),
        ("geobserver", "geo_wal_lag"),
        ("geobserver", "geo_backups"),
        ("bserver", "barman.replication_slot"),
    } <= names
    assert all(set(c) >= {"node", "server", "check", "status", "detail"} for c in doc["checks"])

    nagios = drconsole("--run", "check", "--format", "nagios", config=lab.config_path)
    assert nagios.returncode == 0
    first = nagios.stdout.splitlines()[0]
    assert first.startswith("DRCONSOLE OK - ")
    perf = first.split(" | ", 1)[1]
    assert "bserver.pgserver.backup_age=" in perf and "geobserver.pgserver.geo_lag=" in perf
    assert "bserver.pgserver.stream_lag=" in perf and "bserver.pgserver.wal_age=" in perf

    text = drconsole("--run", "check", config=lab.config_path)
    assert text.returncode == 0
    assert "\x1b[" not in text.stdout  # not a terminal: no colour codes
    assert "receive_wal" in text.stdout and "overall OK" in text.stdout


def test_status_json_contract_and_a_new_backup_appears(lab: Lab) -> None:
    result = lab.barman("bserver", "backup", "--wait", SERVER)
    assert result.returncode == 0, result.stdout + result.stderr
    newest = max(meta_backups(lab, "bserver"))
    status = drconsole(
        "--run", "status", "--format", "json", "--server", SERVER, config=lab.config_path
    )
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    by_node = {s["node"]: s for s in doc["servers"]}
    primary, passive = by_node["bserver"], by_node["geobserver"]
    assert primary["backups"][0]["backup_id"] == newest
    assert primary["backups"][0]["status"] == "DONE"
    assert set(primary["backups"][0]) >= {"backup_id", "status", "end_time", "size_bytes"}
    assert primary["last_archived_wal"] <= xlogdb_segments(lab, "bserver")[-1]
    assert primary["wal_stream"]["receive_wal_running"] is True
    assert primary["wal_stream"]["slot_active"] is True
    assert isinstance(primary["wal_stream"]["lag_bytes"], int)
    assert primary["geo"] is None
    assert set(passive["geo"]) >= {"missing_backups", "wal_lag_segments", "last_sync"}
    text = drconsole("--run", "status", config=lab.config_path)
    assert text.returncode == 0 and newest in text.stdout


def test_receive_wal_stopped_makes_check_critical(lab: Lab) -> None:
    lab.pause_cron("bserver")
    try:
        lab.barman("bserver", "receive-wal", "--stop", SERVER, json=False)
        wait_until(
            "receive-wal to stop",
            lambda: not any(n == "receive-wal" for n, _ in barman_processes(lab, "bserver")),
        )
        result = drconsole(
            "--run", "check", "--node", "bserver", "--format", "json", config=lab.config_path
        )
        assert result.returncode == 2, result.stdout
        checks = checks_of(result)
        assert checks[("bserver", SERVER, "receive_wal")] == "CRITICAL"
        nagios = drconsole(
            "--run", "check", "--node", "bserver", "--format", "nagios", config=lab.config_path
        )
        assert nagios.returncode == 2
        assert nagios.stdout.startswith("DRCONSOLE CRITICAL - ")
        assert "CRITICAL: bserver/pgserver receive_wal: receive-wal is NOT running" in nagios.stdout
    finally:
        lab.resume_cron("bserver")
        lab.barman("bserver", "cron", json=False)
    wait_until(
        "receive-wal to run again",
        lambda: any(n == "receive-wal" for n, _ in barman_processes(lab, "bserver")),
    )


def test_paused_passive_cron_turns_warning_then_critical(lab: Lab, tmp_path: Path) -> None:
    config = with_thresholds(lab, tmp_path, geo_lag_segments=1, geo_lag_segments_critical=3)
    lab.pause_cron("geobserver")
    try:

        def lag() -> int:
            passive = xlogdb_segments(lab, "geobserver")[-1]
            return int(xlogdb_segments(lab, "bserver")[-1], 16) - int(passive, 16)

        while lag() < 1:
            lab.barman("bserver", "switch-wal", "--force", "--archive", SERVER, json=False)
        result = drconsole(
            "--run", "check", "--node", "geobserver", "--format", "json", config=config
        )
        expected = "WARNING" if lag() < 3 else "CRITICAL"
        assert checks_of(result)[("geobserver", SERVER, "geo_wal_lag")] == expected
        while lag() < 3:
            lab.barman("bserver", "switch-wal", "--force", "--archive", SERVER, json=False)
        result = drconsole(
            "--run", "check", "--node", "geobserver", "--format", "json", config=config
        )
        assert result.returncode == 2
        assert checks_of(result)[("geobserver", SERVER, "geo_wal_lag")] == "CRITICAL"
    finally:
        lab.resume_cron("geobserver")

    def synced() -> bool:
        lab.barman("geobserver", "cron", json=False)
        return xlogdb_segments(lab, "geobserver")[-1] == xlogdb_segments(lab, "bserver")[-1]

    wait_until("the passive node to catch up", synced, timeout=120, interval=3)
    result = drconsole("--run", "check", "--node", "geobserver", "--format", "json", config=config)
    assert checks_of(result)[("geobserver", SERVER, "geo_wal_lag")] == "OK"


def test_unreachable_node_is_unknown_and_the_rest_still_reports(lab: Lab, tmp_path: Path) -> None:
    settings = lab.settings
    live = f"{settings.geo_user}@{settings.geo_address}:{settings.ssh_port}"
    dead = f"{settings.geo_user}@{settings.geo_address}:{settings.ssh_port + 77}"
    text = lab.config_path.read_text().replace(live, dead)
    config = tmp_path / "unreachable.toml"
    config.write_text(text)
    config.chmod(0o600)
    result = drconsole("--run", "check", "--format", "json", "--timeout", "120", config=config)
    checks = checks_of(result)
    assert checks[("geobserver", None, "node_reachable")] == "UNKNOWN"
    assert checks[("bserver", None, "node_reachable")] == "OK"
    assert checks[("bserver", SERVER, "receive_wal")] == "OK"
    # the overall status follows the worst state: a down node makes it at least UNKNOWN (3),
    # and CRITICAL or WARNING elsewhere still win (the lab may hold a FAILED backup)
    states = set(checks.values())
    expected = 2 if "CRITICAL" in states else 1 if "WARNING" in states else 3
    assert result.returncode == expected
    status = drconsole("--run", "status", "--format", "json", config=config)
    assert status.returncode == 3
    nodes = {n["node"]: n for n in json.loads(status.stdout)["nodes"]}
    assert nodes["geobserver"]["reachable"] is False
    assert str(settings.ssh_port + 77) in (nodes["geobserver"]["error"] or "")


def test_user_errors_are_one_clear_line(lab: Lab, tmp_path: Path) -> None:
    missing = drconsole("--run", "check", config=tmp_path / "nope.toml")
    assert missing.returncode == 3 and "config file not found" in missing.stderr
    assert missing.stdout == ""
    unknown = drconsole("--run", "status", "--server", "nosuch", config=lab.config_path)
    assert unknown.returncode == 3 and "unknown server 'nosuch'" in unknown.stderr
    hostile = drconsole("--run", "check", "--server", "pg;touch /tmp/pwned", config=lab.config_path)
    assert hostile.returncode == 3 and "server name" in hostile.stderr
    assert not Path("/tmp/pwned").exists()
    node = drconsole("--run", "check", "--node", "nowhere", config=lab.config_path)
    assert node.returncode == 3 and "unknown node 'nowhere'" in node.stderr
