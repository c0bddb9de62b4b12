"""Security on the real lab: host keys, secrets, file modes, the config permission warning."""

from __future__ import annotations

import dataclasses
import json
import stat
import subprocess
from pathlib import Path

import pytest
from fault_helpers import details_of, drconsole, lab_config, until, write_config
from ground_truth import SERVER

from dr_console.config import Config
from dr_console.lab import console_config, postgres_cluster
from dr_console.lab.lab import Lab
from dr_console.tui.app import DrConsoleApp
from dr_console.tui.launch import make_app

pytestmark = pytest.mark.integration


def _geo_known_hosts(lab: Lab, config: Config, known_hosts: Path) -> Config:
    nodes = tuple(
        dataclasses.replace(n, ssh=dataclasses.replace(n.ssh, known_hosts=known_hosts))
        if n.name == "geobserver" and n.ssh is not None
        else n
        for n in config.nodes
    )
    return dataclasses.replace(config, nodes=nodes)


def _wrong_key_file(lab: Lab, tmp_path: Path) -> Path:
    """A known_hosts that pins ANOTHER key for the passive node: a changed host key."""
    key = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                   check=True, timeout=30)  # fmt: skip
    pub = " ".join(key.with_suffix(".pub").read_text().split()[:2])
    s = lab.settings
    path = tmp_path / "known_hosts_changed"
    path.write_text(f"[{s.geo_address}]:{s.ssh_port} {pub}\n")
    return path


@pytest.mark.parametrize("case", ["unknown", "changed"])
def test_host_key_problems_are_refused_headless_with_how_to_verify(
    lab: Lab, tmp_path: Path, case: str
) -> None:
    if case == "unknown":
        known = tmp_path / "known_hosts_empty"
        known.write_text("")
    else:
        known = _wrong_key_file(lab, tmp_path)
    config = _geo_known_hosts(lab, lab_config(lab, connect_timeout=5.0), known)
    path = write_config(config, tmp_path / "c.toml")
    result = drconsole(path, "--run", "check", "--format", "json", timeout=120)
    detail = details_of(result)[("geobserver", None, "node_reachable")]
    assert "ssh-keyscan" in detail and "verify" in detail.lower(), detail
    if case == "changed":
        assert "does NOT match" in detail and "ssh-keygen -R" in detail
    else:
        assert f"is not in {known}" in detail
    assert details_of(result)[("bserver", None, "node_reachable")] is not None
    # and the other node is not affected
    assert '"node": "bserver"' in result.stdout
    text = drconsole(path, "--run", "status", timeout=120)
    assert text.returncode == 3 and "ssh-keyscan" in text.stdout + text.stderr


async def test_host_key_mismatch_is_shown_in_the_console_with_how_to_verify(
    lab: Lab, tmp_path: Path
) -> None:
    config = _geo_known_hosts(lab, lab_config(lab, refresh_interval=1.0, connect_timeout=5.0),
                              _wrong_key_file(lab, tmp_path))  # fmt: skip
    app: DrConsoleApp = make_app(config)
    async with app.run_test(size=(160, 50)) as pilot:
        await until(lambda: app.polls >= 1, 120, "the first poll")
        await pilot.pause()
        fleet = app.state.fleet
        assert fleet is not None and not fleet.nodes["geobserver"].reachable
        shown = app.screen.query("*")
        text = "\n".join(str(w.render()) for w in shown if hasattr(w, "render"))
        notices = "\n".join(n.message for n in app._notifications)
        # today through the notification of the node's jobs scan: a node that never answered
        # has no server row to carry its error
        assert "does NOT match" in text + notices, "the console never says the host key changed"
        assert "ssh-keyscan" in text + notices
        print("host key message shown in:", "screen" if "ssh-keyscan" in text else "notification")
        await pilot.press("q")


def _bserver_through(config: Config, ssh_config: Path | None) -> Config:
    """bserver's known_hosts left to the OpenSSH settings (unset), with this ssh_config."""
    nodes = tuple(
        dataclasses.replace(n, ssh=dataclasses.replace(n.ssh, known_hosts=None,
                                                       config_file=ssh_config))
        if n.name == "bserver" and n.ssh is not None
        else n
        for n in config.nodes
    )  # fmt: skip
    return dataclasses.replace(config, nodes=nodes)


@pytest.mark.parametrize("where", ["ssh_config", "home"])
def test_an_ssh_config_line_cannot_turn_host_key_verification_off(
    lab: Lab, tmp_path: Path, where: str
) -> None:
    """`UserKnownHostsFile none` (asyncssh's "trust every key") in the node's ssh_config or in
    ~/.ssh/config: the node is refused with the line named, and no backup starts there. The
    home has no known_hosts with the lab's key, so any connection made would be unverified."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    line = "Host *\n    UserKnownHostsFile none\n"
    if where == "ssh_config":
        ssh_config: Path | None = tmp_path / "ssh_config"
        ssh_config.write_text(line)
        named = str(ssh_config)
    else:
        ssh_config = None
        (home / ".ssh" / "config").write_text(line)
        named = "~/.ssh/config"
    config = _bserver_through(lab_config(lab, connect_timeout=5.0), ssh_config)
    path = write_config(config, tmp_path / "c.toml")
    env = {"HOME": str(home)}
    jobs = lab.node_home("bserver") / ".drconsole" / "jobs"
    before = set(jobs.iterdir()) if jobs.exists() else set()
    checked = drconsole(path, "--run", "check", "--format", "json", env=env, timeout=120)
    detail = details_of(checked)[("bserver", None, "node_reachable")]
    assert "UserKnownHostsFile none" in detail and named in detail, detail
    assert "verif" in detail
    backup = drconsole(path, "--run", "backup", "--server", SERVER, env=env, timeout=120)
    assert backup.returncode != 0, backup.stdout
    assert "UserKnownHostsFile none" in backup.stdout + backup.stderr
    after = set(jobs.iterdir()) if jobs.exists() else set()
    assert after == before, "a backup job was started over an unverified connection"


def test_the_known_hosts_file_an_ssh_config_names_is_the_one_verified_against(
    lab: Lab, tmp_path: Path
) -> None:
    """The ssh_config's UserKnownHostsFile is honoured: the lab's file lets bserver in, a file
    pinning another key refuses it as a changed key."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    for known, reachable in ((lab.console_known_hosts, True), (_wrong_key_file(lab, tmp_path),
                                                               False)):  # fmt: skip
        if not reachable:  # the wrong key pinned for bserver's address instead of geobserver's
            s = lab.settings
            known.write_text(known.read_text().replace(s.geo_address, s.bserver_address))
        ssh_config = tmp_path / "ssh_config"
        ssh_config.write_text(f"Host *\n    UserKnownHostsFile {known}\n")
        config = _bserver_through(lab_config(lab, connect_timeout=5.0), ssh_config)
        path = write_config(config, tmp_path / "c.toml")
        checked = drconsole(path, "--run", "check", "--format", "json",
                            env={"HOME": str(home)}, timeout=120)  # fmt: skip
        detail = details_of(checked)[("bserver", None, "node_reachable")]
        status = next(c["status"] for c in json.loads(checked.stdout)["checks"]
                      if (c["node"], c["server"], c["check"]) == ("bserver", None,
                                                                  "node_reachable"))
        if reachable:
            assert status == "OK", detail
        else:
            assert status != "OK" and "does NOT match" in detail and str(known) in detail, detail


# --- no secret anywhere ------------------------------------------------------------------------


def _passwords(lab: Lab) -> list[str]:
    s = lab.settings
    found = [
        postgres_cluster.read_pgpass_password(lab.node_home("bserver") / ".pgpass", s,
                                              s.barman_role),
        postgres_cluster.read_pgpass_password(console_config.pgpass_path(s), s, s.monitor_role),
    ]  # fmt: skip
    return [p for p in found if p]


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_no_password_in_config_journal_job_logs_or_run_output(lab: Lab, tmp_path: Path) -> None:
    passwords = _passwords(lab)
    assert len(passwords) == 2 and all(len(p) >= 8 for p in passwords)
    pgpass = console_config.pgpass_path(lab.settings)
    assert passwords[1] in pgpass.read_text()  # the control: the scan can find it
    config = lab_config(lab, journal_dir=str(tmp_path / "journal"))
    path = write_config(config, tmp_path / "c.toml")
    outputs = []
    for args in (
        ("--run", "check", "--format", "json"),
        ("--run", "status", "--format", "json"),
        ("--run", "status"),
        ("--run", "switch-wal", "--server", SERVER),
        ("--run", "cron"),
        ("--run", "jobs", "--format", "json"),
    ):
        result = drconsole(path, *args, timeout=240)
        outputs.append(result.stdout + result.stderr)
    assert "job " in outputs[3] or "closed WAL" in outputs[3], outputs[3]
    scanned: dict[str, str] = {f"--run output {i}": text for i, text in enumerate(outputs)}
    for file in [path, lab.config_path, *_files_under(tmp_path / "journal")]:
        scanned[str(file)] = file.read_text(errors="replace")
    for node in ("bserver", "geobserver"):
        for file in _files_under(lab.node_home(node) / ".drconsole" / "jobs"):
            scanned[str(file)] = file.read_text(errors="replace")
    assert any("journal" in name for name in scanned) and len(scanned) > 10
    for name, text in scanned.items():
        for password in passwords:
            assert password not in text, f"a password leaked into {name}"


# --- file modes --------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_journal_and_job_files_are_private_on_console_and_node(lab: Lab, tmp_path: Path) -> None:
    journal_dir = tmp_path / "journal"
    path = write_config(lab_config(lab, journal_dir=str(journal_dir)), tmp_path / "c.toml")
    private = lab.node_home("bserver") / ".drconsole"
    for directory in (private, private / "jobs"):  # as an earlier version left them
        if directory.exists():
            directory.chmod(0o755)
    result = drconsole(path, "--run", "switch-wal", "--server", SERVER, timeout=240)
    assert _mode(private) == 0o700 and _mode(private / "jobs") == 0o700
    assert result.returncode in (0, 2), result.stderr
    job_id = result.stdout.split()[1] if result.stdout.startswith("job ") else None
    assert _mode(journal_dir) == 0o700
    assert _mode(journal_dir / "journal.jsonl") == 0o600
    jobs = lab.node_home("bserver") / ".drconsole" / "jobs"
    dirs = sorted(d for d in jobs.iterdir() if d.is_dir())
    assert dirs, "no job directory on the node"
    newest = jobs / job_id if job_id else dirs[-1]
    assert _mode(newest) == 0o700
    files = [f for f in newest.iterdir() if f.is_file()]
    assert {"output.log", "meta.json", "argv"} <= {f.name for f in files}
    for file in files:
        assert _mode(file) & 0o077 == 0, f"{file} is {oct(_mode(file))}"


def test_a_config_readable_by_others_is_warned_about_on_stderr(lab: Lab, tmp_path: Path) -> None:
    path = write_config(lab_config(lab), tmp_path / "c.toml")
    quiet = drconsole(path, "--run", "jobs", "--node", "bserver")
    assert "warning" not in quiet.stderr
    path.chmod(0o644)
    loud = drconsole(path, "--run", "jobs", "--node", "bserver")
    assert loud.returncode == 0
    assert "warning" in loud.stderr and str(path) in loud.stderr
    assert "warning" not in loud.stdout
