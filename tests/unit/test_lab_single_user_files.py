"""The single-user lab's parts that need no running lab: who gets which lab, who may build or
remove it, and that its sshd configs and ssh wrapper do what the hosts rely on, as the real sshd
and ssh read them."""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dr_console.lab import lab as lab_module
from dr_console.lab import settings as settings_module
from dr_console.lab import sshd
from dr_console.lab.errors import LabError
from dr_console.lab.lab import mode_error
from dr_console.lab.settings import LabSettings, default_settings

NOBODY = pwd.getpwnam("nobody")


def single(base: Path, user: str = "nobody") -> LabSettings:
    return LabSettings(base_dir=base).as_single_user(user).validate()


def test_root_gets_the_reference_lab_and_anyone_else_a_lab_of_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings_module.os, "geteuid", lambda: 0)
    assert default_settings() == LabSettings()
    monkeypatch.setattr(settings_module.os, "geteuid", lambda: NOBODY.pw_uid)
    mine = default_settings()
    assert mine.single_user
    assert mine.users == ("nobody", "nobody", "nobody")
    assert mine.barman_role == "nobody"
    assert mine.base_dir == Path("/var/tmp/drconsole-lab-nobody")
    # 65534 = 255 * 256 + 254: addresses of its own, beside the root lab's 127.0.0.2-4
    assert mine.addresses == ("127.255.254.2", "127.255.254.3", "127.255.254.4")
    assert (mine.ssh_port, mine.pg_port) == (2222, 5433)
    assert LabSettings.from_json(mine.to_json()) == mine


def test_hosts_of_a_single_user_lab_are_homes_not_users() -> None:
    s = single(Path("/var/tmp/su"))
    homes = [s.host_home(h) for h in ("pgserver", "bserver", "geobserver")]
    assert homes == [Path("/var/tmp/su/home/pgserver"), Path("/var/tmp/su/home/bserver"),
                     Path("/var/tmp/su/home/geobserver")]
    assert s.path_prefix() == "/var/tmp/su/bin:"
    assert LabSettings().host_home("bserver") == Path("/var/tmp/drconsole-lab/home/drlab-bmuser")
    assert LabSettings().path_prefix() == ""


def test_users_must_match_the_mode() -> None:
    with pytest.raises(LabError, match="single-user mode: the three lab users must be the same"):
        LabSettings(single_user=True).validate()
    with pytest.raises(LabError, match="the three lab users must differ"):
        LabSettings(pg_user="me", barman_user="me", geo_user="me").validate()


def test_only_root_builds_a_root_lab_and_only_its_user_a_single_user_lab(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root_lab, nobodys = LabSettings(), single(Path("/var/tmp/drconsole-lab-nobody"))
    monkeypatch.setattr(lab_module.os, "geteuid", lambda: 0)
    assert mode_error(root_lab, "lab up") is None
    assert mode_error(nobodys, "lab down") == (
        "lab down: /var/tmp/drconsole-lab-nobody is the single-user lab of nobody; "
        "run it as nobody")
    monkeypatch.setattr(lab_module.os, "geteuid", lambda: NOBODY.pw_uid)
    assert mode_error(nobodys, "lab up") is None
    problem = mode_error(root_lab, "lab up")
    assert problem is not None
    assert problem.startswith("lab up needs root for this lab")
    assert "run it with sudo" in problem and "single-user lab of your own" in problem


@pytest.fixture
def privsep_dir() -> Iterator[None]:
    """`sshd -T` refuses to run without its privilege separation directory, which only a running
    sshd (or the lab) creates: make it for the test when it is missing, remove it after."""
    created = False
    if not sshd.PRIVSEP_DIR.exists():
        if os.geteuid() != 0:
            pytest.skip(f"{sshd.PRIVSEP_DIR} is missing and only root may create it")
        sshd.PRIVSEP_DIR.mkdir(mode=0o755)
        created = True
    yield
    if created:
        sshd.PRIVSEP_DIR.rmdir()


def _effective_sshd_config(settings: LabSettings, address: str) -> dict[str, str]:
    """What sshd itself makes of the config it would run with (`sshd -T`)."""
    sshd.host_public_key(settings)
    config = settings.sshd_dir / "cfg"
    config.write_text(sshd.config_text(settings, Path("/opt/venv/bin"), address),
                      encoding="utf-8")
    cp = subprocess.run(
        [sshd.SSHD, "-T", "-f", str(config), "-C",
         f"user={settings.barman_user},host=localhost,addr=127.0.0.1"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert cp.returncode == 0, cp.stderr
    out: dict[str, str] = {}
    for line in cp.stdout.splitlines():
        key, _, value = line.partition(" ")
        out[key] = value if key not in out else out[key] + "\n" + value
    return out


@pytest.mark.skipif(not Path(sshd.SSHD).exists(), reason="needs openssh-server")
@pytest.mark.usefixtures("privsep_dir")
def test_each_single_user_sshd_gives_its_sessions_their_hosts_home(tmp_path: Path) -> None:
    s = single(tmp_path, pwd.getpwuid(os.geteuid()).pw_name)
    for host, address in s.host_addresses.items():
        eff = _effective_sshd_config(s, address)
        home = s.host_home(host)
        assert eff["setenv"].split() == [f"HOME={home}",
                                         f"PATH={tmp_path}/bin:/opt/venv/bin:/usr/local/bin"
                                         ":/usr/bin:/bin"]
        assert eff["authorizedkeysfile"] == f"{home}/.ssh/authorized_keys"
        assert eff["allowusers"] == s.barman_user
        assert eff["usepam"] == "no"
        assert eff["passwordauthentication"] == "no"
        assert eff["listenaddress"] == f"{address}:{s.ssh_port}"


@pytest.mark.skipif(not Path(sshd.SSHD).exists(), reason="needs openssh-server")
@pytest.mark.usefixtures("privsep_dir")
def test_root_lab_sshd_keeps_users_homes_and_pam(tmp_path: Path) -> None:
    s = LabSettings(base_dir=tmp_path).validate()
    eff = _effective_sshd_config(s, s.bserver_address)
    assert eff["setenv"] == "PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin"
    assert eff["authorizedkeysfile"] == ".ssh/authorized_keys"
    assert eff["allowusers"].split() == list(s.users)
    assert eff["usepam"] == "yes"


def test_the_ssh_wrapper_uses_the_calling_hosts_own_config(tmp_path: Path) -> None:
    s = single(tmp_path)
    sshd.write_ssh_wrapper(s)
    for host in ("pgserver", "geobserver"):
        home = s.host_home(host)
        (home / ".ssh").mkdir(parents=True)
        (home / ".ssh" / "config").write_text(sshd.client_config_text(s, home),
                                              encoding="utf-8")
    env = {"PATH": s.path_prefix() + "/usr/bin:/bin"}
    for host in ("pgserver", "geobserver"):
        home = s.host_home(host)
        # `ssh -G` prints the configuration a connection would use, without connecting.
        cp = subprocess.run(["ssh", "-G", "nobody@bserver"], env={**env, "HOME": str(home)},
                            capture_output=True, text=True, timeout=30, check=False)
        assert cp.returncode == 0, cp.stderr
        lines = set(cp.stdout.splitlines())
        assert {"hostname 127.0.0.3", "port 2222", f"identityfile {home}/.ssh/id_ed25519",
                f"userknownhostsfile {home}/.ssh/known_hosts", "stricthostkeychecking true",
                "batchmode yes"} <= lines
