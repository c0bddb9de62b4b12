"""`drconsole lab` end to end, on lab instances of their own (never the shared default lab):
built from nothing, checked, exercised, repaired, and removed with the machine left as found."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from dr_console.lab.errors import LabError
from dr_console.lab.lab import Lab
from dr_console.lab.proc import pids_of_uid
from dr_console.lab.settings import LabSettings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]

SERVER = "pgserver"
WATCHED_FILES = ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/subuid",
                 "/etc/subgid", "/etc/hosts")


def lab2_settings() -> LabSettings:
    return LabSettings(
        base_dir=Path("/var/tmp/drconsole-lab-test2"), ssh_port=2232, pg_port=5443,
        cron_interval=5,
    ).with_address_base("127.0.0.12").with_user_prefix("drlab2").validate()


def drconsole(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dr_console.cli", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )


@dataclass(frozen=True)
class MachineState:
    files: dict[str, bytes]
    etc_names: frozenset[str]
    run_sshd: bool


def machine_state() -> MachineState:
    return MachineState(
        files={p: Path(p).read_bytes() for p in WATCHED_FILES if Path(p).exists()},
        # useradd/userdel rewrite their own backups (passwd-, shadow-…); any other new name counts.
        etc_names=frozenset(n for n in os.listdir("/etc") if not n.endswith("-")),
        run_sshd=Path("/run/sshd").exists(),
    )


def port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1.0):
            return True
    except OSError:
        return False


def assert_removed(settings: LabSettings, before: MachineState, uids: list[int]) -> None:
    after = machine_state()
    for path, content in before.files.items():
        assert after.files.get(path) == content, f"{path} differs after lab down"
    assert after.etc_names == before.etc_names
    assert after.run_sshd == before.run_sshd
    assert not settings.base_dir.exists()
    for uid in uids:
        assert pids_of_uid(uid) == [], f"processes of uid {uid} survive lab down"
    mentioning = [p for p in Path("/proc").iterdir() if p.name.isdigit()
                  and str(settings.base_dir).encode() in _read(p / "cmdline")]
    assert mentioning == [], "processes still run from the lab's base dir"
    for address in settings.addresses:
        for port in (settings.ssh_port, settings.pg_port):
            assert not port_open(address, port), f"{address}:{port} still listens"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def wait_for(what: str, predicate: object, timeout: float, interval: float = 2.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(interval)


def all_checks_ok(lab: Lab, node: str) -> dict[str, str]:
    data = lab.barman_json(node, "check", SERVER)
    return {name: item["status"] for name, item in data[SERVER].items() if item["status"] != "OK"}


def done_ids(lab: Lab, node: str) -> list[str]:
    data = lab.barman_json(node, "list-backups", SERVER)
    return [b["backup_id"] for b in data[SERVER] if b["status"] == "DONE"]


@pytest.fixture(scope="module")
def lab2() -> Iterator[tuple[Lab, MachineState, dict[str, float]]]:
    settings = lab2_settings()
    assert not settings.base_dir.exists(), f"{settings.base_dir} left over: lab down it first"
    before = machine_state()
    timings: dict[str, float] = {}
    started = time.monotonic()
    cp = drconsole("lab", "up", "--base-dir", str(settings.base_dir), "--address-base",
                   "127.0.0.12", "--user-prefix", "drlab2", "--ssh-port", "2232",
                   "--pg-port", "5443", "--cron-interval", "5")
    timings["up from nothing"] = time.monotonic() - started
    lab = Lab.at(settings.base_dir)
    try:
        assert cp.returncode == 0, cp.stderr
        assert cp.stdout.strip() == str(settings.config_path)
        yield lab, before, timings
    finally:
        if settings.base_dir.exists():
            with contextlib.suppress(LabError):
                lab.down()
        print("\nlab timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


def test_up_from_nothing_gives_checked_backup_on_both_nodes(lab2: tuple[Lab, MachineState,
                                                                        dict[str, float]]) -> None:
    lab, _, _ = lab2
    assert lab.settings == lab2_settings()
    assert all_checks_ok(lab, "bserver") == {}
    assert all_checks_ok(lab, "geobserver") == {}
    primary = done_ids(lab, "bserver")
    assert primary
    assert primary[0] in done_ids(lab, "geobserver")
    status = drconsole("lab", "status", "--json", "--base-dir", str(lab.settings.base_dir))
    assert status.returncode == 0, status.stdout
    assert json.loads(status.stdout)["state"] == "up"


def test_written_config_reaches_the_lab_as_the_console(lab2: tuple[Lab, MachineState,
                                                                   dict[str, float]]) -> None:
    lab, _, _ = lab2
    doc = tomllib.loads(lab.config_path.read_text())
    assert [n["name"] for n in doc["nodes"]] == ["bserver", "geobserver"]
    assert doc["nodes"][1]["primary"] == "bserver"
    for node in doc["nodes"]:
        user, _, hostport = node["ssh"].partition("@")
        host, _, port = hostport.partition(":")
        cp = subprocess.run(
            ["ssh", "-i", node["ssh_key"], "-o", f"UserKnownHostsFile={node['known_hosts']}",
             "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
             "-o", "BatchMode=yes", "-p", port, f"{user}@{host}",
             "barman -f json list-backups pgserver"],
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert cp.returncode == 0, cp.stderr
        assert json.loads(cp.stdout)[SERVER][0]["status"] == "DONE"
    conninfo = doc["servers"][0]["conninfo"]
    assert "password" not in conninfo
    with psycopg.connect(conninfo, connect_timeout=10) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_replication "
                           "WHERE application_name = 'barman_receive_wal'").fetchone()
    assert row == (1,)


def test_cron_loop_copies_a_new_backup_to_the_passive_node(
    lab2: tuple[Lab, MachineState, dict[str, float]],
) -> None:
    lab, _, _ = lab2
    with lab.cron_paused("geobserver"):
        lab.psql("CREATE TABLE IF NOT EXISTS lab_probe AS SELECT generate_series(1, 1000) g;")
        backup = lab.barman("bserver", "backup", "--wait", SERVER, json=False, timeout=300)
        assert backup.returncode == 0, backup.stderr
        newest = done_ids(lab, "bserver")[0]
        switch = lab.barman("bserver", "switch-wal", "--force", "--archive", SERVER, json=False,
                            timeout=120)
        assert switch.returncode == 0, switch.stderr
        time.sleep(lab.settings.cron_interval + 3)
        assert newest not in done_ids(lab, "geobserver"), "paused cron loop still ran"
    # Nobody runs cron by hand here: the lab's own loop must bring the backup over (P14: the
    # copy and its WALs take more than one run).
    wait_for(f"geobserver to hold backup {newest}",
             lambda: newest in done_ids(lab, "geobserver"), timeout=180)
    wait_for("geobserver check all OK", lambda: all_checks_ok(lab, "geobserver") == {},
             timeout=120)


def test_up_repairs_what_is_down_and_keeps_backups(lab2: tuple[Lab, MachineState,
                                                                dict[str, float]]) -> None:
    lab, _, timings = lab2
    backups = done_ids(lab, "bserver")
    lab.sshd_stop()
    lab.pg_stop()
    lab.pause_cron("bserver")
    status = drconsole("lab", "status", "--json", "--base-dir", str(lab.settings.base_dir))
    assert status.returncode == 1
    components = json.loads(status.stdout)["components"]
    assert not components["sshd"]["up"]
    assert not components["postgres"]["up"]
    assert "paused" in components["cron-bserver"]["detail"]
    lab.resume_cron("bserver")
    started = time.monotonic()
    cp = drconsole("lab", "up", "--base-dir", str(lab.settings.base_dir))
    timings["up repairing sshd+postgres"] = time.monotonic() - started
    assert cp.returncode == 0, cp.stderr
    started = time.monotonic()
    cp = drconsole("lab", "up", "--base-dir", str(lab.settings.base_dir))
    timings["up on a running lab"] = time.monotonic() - started
    assert cp.returncode == 0, cp.stderr
    assert set(backups) <= set(done_ids(lab, "bserver"))
    assert lab.status().state == "up"


def test_down_leaves_the_machine_as_found(lab2: tuple[Lab, MachineState,
                                                      dict[str, float]]) -> None:
    lab, before, timings = lab2
    s = lab.settings
    uids = [lab.account(user).uid for user in s.users]
    # An open console session (like a connection pool) must not keep anything alive.
    session = subprocess.Popen(
        ["ssh", "-i", str(lab.console_key), "-o", f"UserKnownHostsFile={lab.console_known_hosts}",
         "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", str(s.ssh_port),
         f"{s.barman_user}@{s.bserver_address}", "sleep 600"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for("the ssh session", lambda: any(
            b"sleep" in _read(Path(f"/proc/{p}/cmdline")) for p in pids_of_uid(uids[1])),
            timeout=30, interval=0.2)
        started = time.monotonic()
        cp = drconsole("lab", "down", "--base-dir", str(s.base_dir))
        timings["down"] = time.monotonic() - started
        assert cp.returncode == 0, cp.stderr
        assert session.wait(timeout=30) != 0
    finally:
        if session.poll() is None:
            session.kill()
            session.wait(timeout=10)
    assert_removed(lab.settings, before, uids)
    status = drconsole("lab", "status", "--base-dir", str(lab.settings.base_dir))
    assert status.returncode == 3


def test_failed_up_is_reported_and_down_cleans_the_half_built_lab() -> None:
    settings = LabSettings(
        base_dir=Path("/var/tmp/drconsole-lab-test3"), ssh_port=2242, pg_port=5453
    ).with_address_base("127.0.0.22").with_user_prefix("drlab3").validate()
    if settings.base_dir.exists():  # left by an interrupted earlier run: start from nothing
        Lab.at(settings.base_dir).down()
    assert not settings.base_dir.exists()
    before = machine_state()
    with socket.socket() as squatter:
        squatter.bind((settings.pg_address, settings.pg_port))
        squatter.listen()
        cp = drconsole("lab", "up", "--base-dir", str(settings.base_dir), "--address-base",
                       "127.0.0.22", "--user-prefix", "drlab3", "--ssh-port", "2242",
                       "--pg-port", "5453", timeout=300)
    assert cp.returncode == 1
    assert "127.0.0.22:5453 is taken" in cp.stderr
    assert "Traceback" not in cp.stderr
    uids = [a.uid for a in (Lab(settings).account(u) for u in settings.users)]
    cp = drconsole("lab", "down", "--base-dir", str(settings.base_dir), timeout=300)
    assert cp.returncode == 0, cp.stderr
    assert_removed(settings, before, uids)


def test_shared_lab_fixture_gives_a_usable_default_lab(lab: Lab) -> None:
    """Read-only on the shared lab: colleagues' tests get a loadable config and a backup."""
    from dr_console.config import load_config

    if os.environ.get("DRCONSOLE_LAB_SLOT"):
        pytest.skip("about the default lab; this session runs on a slot lab")
    assert lab.settings == LabSettings(barman_version=lab.settings.barman_version)
    config = load_config(lab.config_path)
    assert [n.name for n in config.nodes] == ["bserver", "geobserver"]
    assert done_ids(lab, "bserver")
    assert done_ids(lab, "geobserver")
