"""The lab's private sshd and the ssh keys, client configs and known_hosts around it.

The sshd has its own host key in <base>/sshd and listens only on the lab's loopback addresses.
Every lab user gets ~/.ssh/config with the aliases pgserver / bserver / geobserver and a
known_hosts that already holds the lab host key, so nothing is trusted on first use. Remote
commands find a bare `barman` through `SetEnv PATH=…` (FINDINGS P5), which `up` verifies.
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


def config_file(settings: LabSettings) -> Path:
    return settings.sshd_dir / "sshd_config"


def pid_file(settings: LabSettings) -> Path:
    return settings.sshd_dir / "sshd.pid"


def console_key(settings: LabSettings) -> Path:
    return settings.console_dir / "id_ed25519"


def console_known_hosts(settings: LabSettings) -> Path:
    return settings.console_dir / "known_hosts"


def remote_path(venv_bin: Path) -> str:
    return f"{venv_bin}:/usr/local/bin:/usr/bin:/bin"


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


def client_config_text(settings: LabSettings) -> str:
    blocks = [f"Host {alias}\n    HostName {addr}\n"
              for alias, addr in settings.host_addresses.items()]
    blocks.append(
        f"Host {' '.join(settings.host_addresses)}\n"
        f"    Port {settings.ssh_port}\n"
        "    IdentityFile ~/.ssh/id_ed25519\n"
        "    IdentitiesOnly yes\n"
        "    UserKnownHostsFile ~/.ssh/known_hosts\n"
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
    write_owned(ssh_dir / "config", client_config_text(settings), account, 0o600)
    write_owned(ssh_dir / "known_hosts", known_hosts_text(settings, True), account, 0o600)
    write_owned(ssh_dir / "authorized_keys", "\n".join(authorized) + "\n", account, 0o600)


def write_console_files(settings: LabSettings) -> str:
    """The console's own key pair and known_hosts; returns the public key line."""
    settings.console_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.console_dir, 0o700)
    pub = ensure_root_key(console_key(settings), "drconsole@lab-console")
    console_known_hosts(settings).write_text(known_hosts_text(settings, False), encoding="ascii")
    return pub


# --- the daemon ------------------------------------------------------------------------------


def config_text(settings: LabSettings, venv_bin: Path) -> str:
    listen = "".join(f"ListenAddress {a}:{settings.ssh_port}\n" for a in settings.addresses)
    return (
        "# private sshd of `drconsole lab` (the system sshd is not involved)\n"
        f"{listen}"
        f"HostKey {host_key(settings)}\n"
        f"PidFile {pid_file(settings)}\n"
        "AuthorizedKeysFile .ssh/authorized_keys\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin no\n"
        f"AllowUsers {' '.join(settings.users)}\n"
        # Debian's way; locked accounts (useradd leaves '!') are then allowed (FINDINGS P7).
        "UsePAM yes\n"
        "PrintMotd no\n"
        "PrintLastLog no\n"
        "X11Forwarding no\n"
        "MaxStartups 100:30:200\n"
        "MaxSessions 100\n"
        "LogLevel INFO\n"
        f"SetEnv PATH={remote_path(venv_bin)}\n"
        "Subsystem sftp /usr/lib/openssh/sftp-server\n"
    )


def running_pid(settings: LabSettings) -> int | None:
    """The pid of this lab's sshd, or None (a recycled pid is not mistaken for it)."""
    pid = read_pidfile(pid_file(settings))
    if pid is None or not pid_alive(pid):
        return None
    # sshd rewrites its argv into one title: "sshd: /usr/sbin/sshd -f CONFIG [listener] …".
    title = " ".join(cmdline(pid))
    if "sshd" not in title or f"-f {config_file(settings)}" not in title:
        return None
    return pid


def listening(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1.0) as sock:
            sock.settimeout(1.0)
            return sock.recv(4).startswith(b"SSH")
    except OSError:
        return False


def start(settings: LabSettings, venv_bin: Path) -> bool:
    """Write the config and start the daemon unless it runs with that config; True if started.

    A changed config is applied by restarting the daemon."""
    cfg = config_file(settings)
    text = config_text(settings, venv_bin)
    changed = not cfg.exists() or cfg.read_text(encoding="utf-8") != text
    if changed:
        cfg.write_text(text, encoding="utf-8")
    pid = running_pid(settings)
    if pid is not None and not changed:
        return False
    if pid is not None:
        stop(settings)
    for address in settings.addresses:
        if listening(address, settings.ssh_port):
            raise LabError(
                f"{address}:{settings.ssh_port} is already taken by another program; "
                "choose another --ssh-port"
            )
    run([SSHD, "-t", "-f", str(cfg)], timeout=30)
    run([SSHD, "-f", str(cfg), "-E", str(settings.sshd_dir / "sshd.log")], timeout=30,
        capture=False)
    wait_until(
        f"the lab sshd on port {settings.ssh_port}",
        lambda: all(listening(a, settings.ssh_port) for a in settings.addresses),
        timeout=15,
    )
    return True


def stop(settings: LabSettings) -> None:
    pid = running_pid(settings)
    if pid is not None:
        # Open sessions outlive the listener; their root-owned monitors are its children.
        left = terminate([pid, *children_of(pid)], grace=10)
        if left:
            raise LabError(f"the lab sshd (pid {pid}) does not stop")
    pid_file(settings).unlink(missing_ok=True)
    # Give the kernel a moment to release the listening sockets before anything probes them.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(
        listening(a, settings.ssh_port) for a in settings.addresses
    ):
        time.sleep(0.1)
