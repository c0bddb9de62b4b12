"""The single-user lab end to end: built by a user who is not root, checked, used by the console,
and removed with that user's own home and processes left alone.

Run as root, the test creates a throwaway unprivileged user and runs `drconsole lab` as that user;
run by anyone else, it runs the lab as the caller. The CLI runs as that user through
tests/run_as_user.py, so the test works even when this checkout is not readable by that user;
the lab then builds a Barman venv its user can run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dr_console.lab.lab import Lab
from dr_console.lab.proc import pid_alive, pids_of_uid, pids_with_home
from tests.run_as_user import Cli, as_user

pytestmark = pytest.mark.integration

SERVER = "pgserver"
BASE = Path("/var/tmp/drconsole-lab-test-single")
LAB_OPTIONS = ["--base-dir", str(BASE), "--address-base", "127.0.0.32", "--ssh-port", "2252",
               "--pg-port", "5463", "--cron-interval", "5"]
THROWAWAY_USER = "drlabsolo"
# What a single-user lab must never touch in the home of the user who runs it.
PRIVATE_NAMES = (".ssh", ".pgpass", ".barman.conf", "barman.d", ".bashrc", ".profile")


def home_snapshot(home: Path, whole: bool) -> dict[str, tuple[int, str]]:
    """Mode and content hash of every file under HOME (or of its private names only)."""
    roots = [home] if whole else [home / name for name in PRIVATE_NAMES]
    seen: dict[str, tuple[int, str]] = {}
    for root in roots:
        paths = [root, *root.rglob("*")] if root.is_dir() else [root]
        for path in paths:
            if not path.exists() and not path.is_symlink():
                continue
            st = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            seen[str(path.relative_to(home))] = (st.st_mode, digest)
    return seen


@dataclass
class Solo:
    user: pwd.struct_passwd
    created_user: bool
    home_before: dict[str, tuple[int, str]]
    passwd_before: bytes
    up: Cli
    timings: dict[str, float]

    @property
    def lab(self) -> Lab:
        return Lab.at(BASE)


def _throwaway_user() -> pwd.struct_passwd:
    with contextlib.suppress(KeyError):
        pwd.getpwnam(THROWAWAY_USER)
        subprocess.run(["userdel", "-r", THROWAWAY_USER], capture_output=True, timeout=60,
                       check=False)  # left by an interrupted earlier run
    subprocess.run(["useradd", "-m", "-d", f"/var/tmp/{THROWAWAY_USER}-home", "-s", "/bin/bash",
                    THROWAWAY_USER], capture_output=True, timeout=60, check=True)
    return pwd.getpwnam(THROWAWAY_USER)


@pytest.fixture(scope="module")
def solo() -> Iterator[Solo]:
    created = os.geteuid() == 0
    user = _throwaway_user() if created else pwd.getpwuid(os.geteuid())
    try:
        if BASE.exists():  # left by an interrupted earlier run
            as_user(user, "lab", "down", "--base-dir", str(BASE))
        assert not BASE.exists(), f"{BASE} left over: remove it first"
        home_before = home_snapshot(Path(user.pw_dir), whole=created)
        passwd_before = Path("/etc/passwd").read_bytes()
        started = time.monotonic()
        up = as_user(user, "lab", "up", *LAB_OPTIONS)
        timings = {"up from nothing": time.monotonic() - started}
        yield Solo(user, created, home_before, passwd_before, up, timings)
    finally:
        if BASE.exists():
            as_user(user, "lab", "down", "--base-dir", str(BASE))
        if created:
            with contextlib.suppress(OSError):
                for pid in pids_of_uid(user.pw_uid):
                    os.kill(pid, signal.SIGKILL)
            subprocess.run(["userdel", "-r", THROWAWAY_USER], capture_output=True, timeout=60,
                           check=False)


def failing_checks(lab: Lab, node: str) -> dict[str, str]:
    data = lab.barman_json(node, "check", SERVER)
    return {name: item["status"] for name, item in data[SERVER].items() if item["status"] != "OK"}


def done_ids(lab: Lab, node: str) -> list[str]:
    return [b["backup_id"] for b in lab.barman_json(node, "list-backups", SERVER)[SERVER]
            if b["status"] == "DONE"]


def wait_for(what: str, predicate: object, timeout: float) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(2)


def test_a_user_who_is_not_root_gets_a_checked_lab_as_themselves(solo: Solo) -> None:
    assert solo.up.returncode == 0, solo.up.stderr
    lab = solo.lab
    assert solo.up.stdout.strip() == str(lab.config_path)
    assert lab.settings.single_user
    assert set(lab.settings.users) == {solo.user.pw_name}
    assert Path("/etc/passwd").read_bytes() == solo.passwd_before, "the lab created a user"
    assert failing_checks(lab, "bserver") == {}
    assert failing_checks(lab, "geobserver") == {}
    primary = done_ids(lab, "bserver")
    assert primary and primary[0] in done_ids(lab, "geobserver")
    # Every lab process runs as the user, and each host's processes carry that host's HOME.
    for host in ("pgserver", "bserver", "geobserver"):
        home = lab.settings.host_home(host)
        assert pids_with_home(solo.user.pw_uid, home), f"no process of {host}"
    status = as_user(solo.user, "lab", "status", "--json", "--base-dir", str(BASE))
    assert status.returncode == 0, status.stdout + status.stderr
    doc = json.loads(status.stdout)
    assert doc["state"] == "up"
    assert doc["components"]["users"]["detail"] == f"{solo.user.pw_name} (single-user mode)"


def test_backup_switch_wal_and_the_passive_copy_work_between_the_hosts(solo: Solo) -> None:
    lab = solo.lab
    backup = lab.barman("bserver", "backup", "--wait", SERVER, json=False, timeout=300)
    assert backup.returncode == 0, backup.stderr  # rsync over ssh to pgserver
    newest = done_ids(lab, "bserver")[0]
    switch = lab.barman("bserver", "switch-wal", "--force", "--archive", SERVER, json=False,
                        timeout=120)
    assert switch.returncode == 0, switch.stderr  # barman-wal-archive over ssh to bserver
    # geobserver's own cron loop copies it through primary_ssh_command.
    wait_for(f"geobserver to hold {newest}", lambda: newest in done_ids(lab, "geobserver"), 180)
    wait_for("geobserver check all OK", lambda: failing_checks(lab, "geobserver") == {}, 120)


def test_the_console_works_on_the_config_the_lab_wrote(solo: Solo) -> None:
    cp = subprocess.run(
        [sys.executable, "-m", "dr_console.cli", "-c", str(solo.lab.config_path), "--run",
         "check", "--format", "json"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    doc = json.loads(cp.stdout)
    assert cp.returncode == 0, json.dumps(
        [c for c in doc["checks"] if c["status"] != "OK"], indent=1)
    assert doc["status"] == "OK"
    assert {c["node"] for c in doc["checks"]} == {"bserver", "geobserver"}


def test_up_again_keeps_the_lab_and_its_backups(solo: Solo) -> None:
    before = done_ids(solo.lab, "bserver")
    started = time.monotonic()
    again = as_user(solo.user, "lab", "up", "-q", "--base-dir", str(BASE))
    solo.timings["up on a running lab"] = time.monotonic() - started
    assert again.returncode == 0, again.stderr
    assert set(before) <= set(done_ids(solo.lab, "bserver"))


@pytest.mark.skipif(os.geteuid() != 0, reason="root is the other party here")
def test_root_may_not_remove_a_users_lab(solo: Solo) -> None:
    cp = subprocess.run([sys.executable, "-m", "dr_console.cli", "lab", "down", "--base-dir",
                         str(BASE)], capture_output=True, text=True, timeout=60, check=False)
    assert cp.returncode == 1
    assert cp.stderr.strip() == (
        f"drconsole lab down: lab down: {BASE} is the single-user lab of {solo.user.pw_name}; "
        f"run it as {solo.user.pw_name}")
    assert solo.lab.status(with_backups=False).state == "up"


def test_down_removes_the_lab_and_nothing_else_of_the_user(solo: Solo) -> None:
    lab = solo.lab
    user = solo.user
    # The user's own work, outside the lab, must survive `lab down`.
    own = subprocess.Popen(
        ["sleep", "600"], user=None if os.geteuid() == user.pw_uid else user.pw_uid,
        env={"HOME": user.pw_dir, "PATH": "/usr/bin:/bin"}, stdin=subprocess.DEVNULL,
    )
    try:
        started = time.monotonic()
        down = as_user(user, "lab", "down", "--base-dir", str(BASE))
        solo.timings["down"] = time.monotonic() - started
        assert down.returncode == 0, down.stderr
        assert pid_alive(own.pid), "lab down killed a process of the user outside the lab"
    finally:
        own.kill()
        own.wait(timeout=10)
    assert not BASE.exists()
    assert pids_with_home(user.pw_uid, BASE) == []
    for address in lab.settings.addresses:
        for port in (lab.settings.ssh_port, lab.settings.pg_port):
            with contextlib.suppress(OSError), socket.create_connection((address, port), 1):
                pytest.fail(f"{address}:{port} still listens after lab down")
    assert home_snapshot(Path(user.pw_dir), whole=solo.created_user) == solo.home_before
    assert Path("/etc/passwd").read_bytes() == solo.passwd_before
    print("\nsingle-user lab timings: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in solo.timings.items()))
