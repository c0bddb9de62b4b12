"""Starting, stopping and pausing the per-node cron loops (see cronloop.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from dr_console.lab import cronloop
from dr_console.lab.errors import LabError
from dr_console.lab.proc import Account, cmdline, identity, pid_alive, read_pidfile, terminate
from dr_console.lab.settings import LabSettings

SYSTEM_PYTHON = "/usr/bin/python3"
# Read once at import: the lab may later run as a user who cannot read this checkout.
LOOP_SOURCE = Path(cronloop.__file__).read_text(encoding="utf-8")


def script(settings: LabSettings) -> Path:
    return settings.bin_dir / "cronloop.py"


def pid_file(settings: LabSettings, node: str) -> Path:
    return settings.run_dir / f"cron-{node}.pid"


def pause_file(settings: LabSettings, node: str) -> Path:
    return settings.run_dir / f"cron-{node}.pause"


def log_file(settings: LabSettings, node: str) -> Path:
    return settings.run_dir / f"cron-{node}.log"


def running_pid(settings: LabSettings, node: str) -> int | None:
    pid = read_pidfile(pid_file(settings, node))
    if pid is None or not pid_alive(pid) or str(script(settings)) not in cmdline(pid):
        return None
    return pid


def start(settings: LabSettings, node: str, account: Account, venv_bin: Path) -> bool:
    """Start the loop for NODE as ACCOUNT unless it runs; True when started."""
    if running_pid(settings, node) is not None:
        return False
    settings.bin_dir.mkdir(parents=True, exist_ok=True)
    settings.bin_dir.chmod(0o755)
    script(settings).write_text(LOOP_SOURCE, encoding="utf-8")
    script(settings).chmod(0o644)
    python = SYSTEM_PYTHON if Path(SYSTEM_PYTHON).exists() else str(venv_bin / "python3")
    argv = [
        python, str(script(settings)), "--barman", str(venv_bin / "barman"),
        "--interval", f"{settings.cron_interval:g}",
        "--pause-file", str(pause_file(settings, node)),
    ]
    user, group, extra_groups = identity(account)
    with open(log_file(settings, node), "ab") as log:
        try:
            proc = subprocess.Popen(
                argv,
                user=user,
                group=group,
                extra_groups=extra_groups,
                env=account.environment(f"{venv_bin}:/usr/local/bin:/usr/bin:/bin"),
                cwd=str(account.home),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise LabError(f"cannot start the cron loop for {node}: {exc}") from exc
    pid_file(settings, node).write_text(f"{proc.pid}\n", encoding="ascii")
    return True


def stop(settings: LabSettings, node: str) -> None:
    pid = running_pid(settings, node)
    if pid is not None and terminate([pid], grace=10):
        raise LabError(f"the cron loop of {node} (pid {pid}) does not stop")
    pid_file(settings, node).unlink(missing_ok=True)


def pause(settings: LabSettings, node: str) -> None:
    pause_file(settings, node).touch()


def resume(settings: LabSettings, node: str) -> None:
    pause_file(settings, node).unlink(missing_ok=True)
