"""Lab settings are validated before anything reaches a shell, and the CLI says what is wrong."""

from __future__ import annotations

import dataclasses
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from dr_console.lab.errors import LabError
from dr_console.lab.settings import LabSettings
from tests.run_as_user import Cli, as_user


def test_defaults_are_the_reference_lab() -> None:
    s = LabSettings().validate()
    assert s.addresses == ("127.0.0.2", "127.0.0.3", "127.0.0.4")
    assert s.barman_role == s.barman_user == "drlab-bmuser"


def test_second_lab_settings_shift_addresses_and_users() -> None:
    s = LabSettings().with_address_base("127.0.0.12").with_user_prefix("drlab2").validate()
    assert s.addresses == ("127.0.0.12", "127.0.0.13", "127.0.0.14")
    assert s.users == ("drlab2-postgres", "drlab2-bmuser", "drlab2-geobmuser")
    assert LabSettings.from_json(s.to_json()) == s


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pg_address": "10.0.0.2"}, "not a loopback address"),
        ({"pg_address": "127.0.0.1"}, "dedicated loopback address"),
        ({"geo_address": "127.0.0.3"}, "must differ"),
        ({"ssh_port": 22}, "between 1024 and 65535"),
        ({"barman_user": "bm user;rm"}, "not a valid user name"),
        ({"base_dir": Path("/tmp/it's")}, "plain characters"),
        ({"cron_interval": 0.0}, "1..3600"),
    ],
)
def test_bad_settings_are_refused_by_name(change: dict[str, object], message: str) -> None:
    with pytest.raises(LabError, match=message):
        dataclasses.replace(LabSettings(), **change).validate()  # type: ignore[arg-type]


def test_cli_reports_bad_address_without_traceback(tmp_path: Path) -> None:
    cp = subprocess.run(
        [sys.executable, "-m", "dr_console.cli", "lab", "up", "--base-dir", str(tmp_path / "l"),
         "--address-base", "192.168.1.2"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert cp.returncode == 1
    assert "pg_address: 192.168.1.2 is not a loopback address" in cp.stderr
    assert "Traceback" not in cp.stderr
    assert not (tmp_path / "l").exists()


def test_status_of_an_absent_lab_exits_3(tmp_path: Path) -> None:
    cp = subprocess.run(
        [sys.executable, "-m", "dr_console.cli", "lab", "status", "--json", "--base-dir",
         str(tmp_path / "none")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert cp.returncode == 3
    assert '"state": "absent"' in cp.stdout


def lab_cli_not_as_root(*args: str) -> Cli:
    """`drconsole lab ARGS` as a user who is not root: this one, or nobody when this is root."""
    user = pwd.getpwnam("nobody") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
    return as_user(user, "lab", *args, timeout=60)


def test_user_prefix_as_non_root_says_it_is_for_root_labs(tmp_path: Path) -> None:
    cp = lab_cli_not_as_root("up", "--base-dir", str(tmp_path / "l"), "--user-prefix", "mine")
    assert cp.returncode == 1
    assert cp.stderr == ("drconsole lab up: --user-prefix needs root: a single-user lab runs "
                         "as you\n")
    assert not (tmp_path / "l").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run as an account without a shell")
def test_single_user_lab_of_an_account_without_a_shell_is_refused_up_front() -> None:
    base = Path("/var/tmp/drconsole-lab-test-noshell")
    cp = lab_cli_not_as_root("up", "--base-dir", str(base), "--address-base", "127.0.0.42")
    assert cp.returncode == 1
    assert cp.stderr.startswith("drconsole lab up: single-user mode: the login shell of nobody "
                                "(/usr/sbin/nologin) cannot run the commands")
    assert "Traceback" not in cp.stderr
    assert not base.exists()


@pytest.mark.parametrize("tool", ["lab", "demo"])
def test_lab_and_demo_default_to_the_callers_own_lab_when_not_root(tool: str) -> None:
    user = pwd.getpwnam("nobody") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
    if tool == "lab":
        cp = lab_cli_not_as_root("--help")
    else:
        cp = as_user(user, "demo", "--help", timeout=60)
    assert cp.returncode == 0, cp.stderr
    unwrapped = "".join(cp.stdout.split())  # argparse wraps help lines, even inside a path
    assert f"(default/var/tmp/drconsole-lab-{user.pw_name})" in unwrapped
