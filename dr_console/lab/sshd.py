"""The lab's private sshd and the ssh keys, client configs and known_hosts around it.

The sshd (one daemon per lab address, so one node can lose its sshd alone) has its own host key
in <base>/sshd and listens only on the lab's loopback addresses.
Every lab host gets ~/.ssh/config with the aliases pgserver / bserver / geobserver and a
known_hosts that already holds the lab host key, so nothing is trusted on first use. Remote
commands find a bare `barman` through `SetEnv PATH=…` (FINDINGS P5), which `up` verifies.

Single-user mode: the daemons run as the caller and serve only the caller. Each one sets HOME to
its host's home (which is how one user is three hosts) and reads that host's authorized_keys.
OpenSSH's client takes ~/.ssh from the passwd entry, not from HOME, so the lab puts an `ssh`
wrapper first on every lab PATH that passes `-F $HOME/.ssh/config`; Barman, rsync and
barman-wal-archive all run a bare `ssh`, and the user's own ~/.ssh is never read or written.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from dr_console.lab.errors import LabError
from dr_console.lab.proc import (
    Account,
    children_of,
    cmdline,
    pid_alive,
    read_pidfile,
    run,
    terminate,
    wait_until,
)
from dr_console.lab.settings import LabSettings
from dr_console.lab.users import make_dir, write_owned

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")


def host_key(settings: LabSettings) -> Path:
    return settings.sshd_dir / "ssh_host_ed25519_key"


def console_key(settings: LabSettings) -> Path:
    return settings.console_dir / "id_ed25519"


def console_known_hosts(settings: LabSettings) -> Path:
    return settings.console_dir / "known_hosts"


def remote_path(venv_bin: Path) -> str:
    return f"{venv_bin}:/usr/local/bin:/usr/bin:/bin"


def ssh_wrapper(settings: LabSettings) -> Path:
    return settings.bin_dir / "ssh"


SSH_WRAPPER = """#!/bin/sh
# written by `drconsole lab up` (single-user mode): each lab host's own ssh config, known_hosts
# and key, found through HOME because OpenSSH itself looks in the passwd entry's home.
exec /usr/bin/ssh -F "$HOME/.ssh/config" "$@"
"""


def write_ssh_wrapper(settings: LabSettings) -> None:
    settings.bin_dir.mkdir(parents=True, exist_ok=True)
    path = ssh_wrapper(settings)
    path.write_text(SSH_WRAPPER, encoding="ascii")
    path.chmod(0o755)


# --- keys ------------------------------------------------------------------------------------


def ensure_root_key(path: Path, comment: str) -> str:
    """An ed25519 key pair owned by the caller (root); returns the public key line."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            timeout=30)
    os.chmod(path, 0o600)
    return path.with_suffix(".pub").read_text(encoding="ascii").strip()


def ensure_user_key(account: Account) -> str:
    ssh_dir = account.home / ".ssh"
    make_dir(ssh_dir, account, 0o700)
    key = ssh_dir / "id_ed25519"
    if not key.exists():
        run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{account.name}@drlab",
             "-f", str(key)],
            timeout=30,
            account=account,
        )
    return key.with_suffix(".pub").read_text(encoding="ascii").strip()


def host_public_key(settings: LabSettings) -> str:
    """The lab host key as 'ssh-ed25519 AAAA…' (no comment)."""
    settings.sshd_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.sshd_dir, 0o755)
    line = ensure_root_key(host_key(settings), "drconsole-lab-host")
    return " ".join(line.split()[:2])


# --- client side -----------------------------------------------------------------------------


def known_hosts_text(settings: LabSettings, with_aliases: bool) -> str:
    key = host_public_key(settings)
    lines = []
    for alias, address in settings.host_addresses.items():
        names = [f"[{address}]:{settings.ssh_port}"]
        if with_aliases:
            names.append(f"[{alias}]:{settings.ssh_port}")
        lines.append(f"{','.join(names)} {key}")
    return "\n".join(lines) + "\n"


def client_config_text(settings: LabSettings, home: Path) -> str:
    """The ssh config of the lab host whose home is HOME (paths are absolute: with `-F`, `~` is
    still the passwd home)."""
    blocks = [f"Host {alias}\n    HostName {addr}\n"
              for alias, addr in settings.host_addresses.items()]
    blocks.append(
        f"Host {' '.join(settings.host_addresses)}\n"
        f"    Port {settings.ssh_port}\n"
        f"    IdentityFile {home}/.ssh/id_ed25519\n"
        "    IdentitiesOnly yes\n"
        f"    UserKnownHostsFile {home}/.ssh/known_hosts\n"
        "    GlobalKnownHostsFile /dev/null\n"
        "    StrictHostKeyChecking yes\n"
        "    CheckHostIP no\n"
        "    BatchMode yes\n"
        "    ConnectTimeout 10\n"
    )
    return "# written by `drconsole lab up`\n" + "\n".join(blocks)


def write_client_files(settings: LabSettings, account: Account, authorized: list[str]) -> None:
    ssh_dir = account.home / ".ssh"
    make_dir(ssh_dir, account, 0o700)
    write_owned(ssh_dir / "config", client_config_text(settings, account.home), account, 0o600)
    write_owned(ssh_dir / "known_hosts", known_hosts_text(settings, True), account, 0o600)
    write_owned(ssh_dir / "authorized_keys", "\n".join(authorized) + "\n", account, 0o600)


def write_console_files(settings: LabSettings) -> str:
    """The console's own key pair and known_hosts; returns the public key line."""
    settings.console_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.console_dir, 0o700)
    pub = ensure_root_key(console_key(settings), "drconsole@lab-console")
    console_known_hosts(settings).write_text(known_hosts_text(settings, False), encoding="ascii")
    return pub


# --- the daemons: one per lab address, so that one node's sshd can stop alone ----------------


def config_file(settings: LabSettings, address: str) -> Path:
    return settings.sshd_dir / f"sshd_config-{address}"


def pid_file(settings: LabSettings, address: str) -> Path:
    return settings.sshd_dir / f"sshd-{address}.pid"


def _legacy_files(settings: LabSettings) -> tuple[Path, Path]:
    """Config and pid file of the single sshd that older labs ran for all three addresses."""
    return settings.sshd_dir / "sshd_config", settings.sshd_dir / "sshd.pid"


def _mode_lines(settings: LabSettings, venv_bin: Path, address: str) -> str:
    path = settings.path_prefix() + remote_path(venv_bin)
    if not settings.single_user:
        return (
            f"AllowUsers {' '.join(settings.users)}\n"
            "AuthorizedKeysFile .ssh/authorized_keys\n"
            # Debian's way; locked accounts (useradd leaves '!') are then allowed (FINDINGS P7).
            "UsePAM yes\n"
            f"SetEnv PATH={path}\n"
        )
    home = settings.host_home(settings.host_of_address(address))
    return (
        f"AllowUsers {settings.barman_user}\n"
        f"AuthorizedKeysFile {home}/.ssh/authorized_keys\n"
        # A daemon that is not root cannot open Debian's PAM session (pam_loginuid).
        "UsePAM no\n"
        # The lab's files are 0600 in a 0700 base dir, but StrictModes also refuses /var/tmp
        # (mode 1777) on the way from / to them.
        "StrictModes no\n"
        # One line: sshd keeps only its first SetEnv.
        f"SetEnv HOME={home} PATH={path}\n"
    )


def config_text(settings: LabSettings, venv_bin: Path, address: str) -> str:
    return (
        f"# private sshd of `drconsole lab` for {address} (the system sshd is not involved)\n"
        f"ListenAddress {address}:{settings.ssh_port}\n"
        f"HostKey {host_key(settings)}\n"
        f"PidFile {pid_file(settings, address)}\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin no\n"
        + _mode_lines(settings, venv_bin, address)
        + "PrintMotd no\n"
        "PrintLastLog no\n"
        "X11Forwarding no\n"
        "MaxStartups 100:30:200\n"
        "MaxSessions 100\n"
        "LogLevel INFO\n"
        "Subsystem sftp /usr/lib/openssh/sftp-server\n"
    )


def _daemon_pid(pidfile: Path, config: Path) -> int | None:
    pid = read_pidfile(pidfile)
    if pid is None or not pid_alive(pid):
        return None
    # sshd rewrites its argv into one title: "sshd: /usr/sbin/sshd -f CONFIG [listener] …".
    title = " ".join(cmdline(pid))
    if "sshd" not in title or f"-f {config}" not in title:
        return None
    return pid


def address_pid(settings: LabSettings, address: str) -> int | None:
    """The pid of the lab sshd for ADDRESS, or None (a recycled pid is not mistaken for it)."""
    return _daemon_pid(pid_file(settings, address), config_file(settings, address))


def running_pid(settings: LabSettings) -> int | None:
    """The pid of the first lab sshd when all of them run, else None."""
    pids = [address_pid(settings, a) for a in settings.addresses]
    return pids[0] if all(pids) else None


def listening(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1.0) as sock:
            sock.settimeout(1.0)
            return sock.recv(4).startswith(b"SSH")
    except OSError:
        return False


def _targets(settings: LabSettings, address: str | None) -> tuple[str, ...]:
    if address is None:
        return settings.addresses
    if address not in settings.addresses:
        raise LabError(f"{address} is not a lab address ({', '.join(settings.addresses)})")
    return (address,)


def start(settings: LabSettings, venv_bin: Path, address: str | None = None) -> bool:
    """Write the configs and start each daemon (all, or ADDRESS's) unless it runs with its
    config; True if one was started. A changed config is applied by restarting that daemon."""
    _stop_legacy(settings)
    started = False
    for addr in _targets(settings, address):
        cfg = config_file(settings, addr)
        text = config_text(settings, venv_bin, addr)
        changed = not cfg.exists() or cfg.read_text(encoding="utf-8") != text
        if changed:
            cfg.write_text(text, encoding="utf-8")
        pid = address_pid(settings, addr)
        if pid is not None and not changed:
            continue
        if pid is not None:
            stop(settings, addr)
        if listening(addr, settings.ssh_port):
            raise LabError(
                f"{addr}:{settings.ssh_port} is already taken by another program; "
                "choose another --ssh-port"
            )
        run([SSHD, "-t", "-f", str(cfg)], timeout=30)
        run([SSHD, "-f", str(cfg), "-E", str(settings.sshd_dir / "sshd.log")], timeout=30,
            capture=False)
        started = True
    targets = _targets(settings, address)
    wait_until(
        f"the lab sshd on port {settings.ssh_port}",
        lambda: all(listening(a, settings.ssh_port) for a in targets),
        timeout=15,
    )
    return started


def stop(settings: LabSettings, address: str | None = None) -> None:
    """Stop the daemons (all, or ADDRESS's) with the sessions they serve."""
    targets = _targets(settings, address)
    if address is None:
        _stop_legacy(settings)
    for addr in targets:
        _terminate(address_pid(settings, addr), f"the lab sshd for {addr}")
        pid_file(settings, addr).unlink(missing_ok=True)
    # Give the kernel a moment to release the listening sockets before anything probes them.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(
        listening(a, settings.ssh_port) for a in targets
    ):
        time.sleep(0.1)


def _terminate(pid: int | None, what: str) -> None:
    if pid is None:
        return
    # Open sessions outlive the listener; their root-owned monitors are its children.
    left = terminate([pid, *children_of(pid)], grace=10)
    if left:
        raise LabError(f"{what} (pid {pid}) does not stop")


def _stop_legacy(settings: LabSettings) -> None:
    config, pidfile = _legacy_files(settings)
    _terminate(_daemon_pid(pidfile, config), "the lab sshd")
    pidfile.unlink(missing_ok=True)
    config.unlink(missing_ok=True)
