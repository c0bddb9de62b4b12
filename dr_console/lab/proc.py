"""Running commands for the lab: argv lists only, a timeout on every call, as a given OS account.

Commands for a lab host are run with a clean environment whose HOME is that host's home. As root
this process switches to the host's user (what `runuser -u USER -- env HOME=…` does, without
keeping root's HOME, FINDINGS P4, and without an extra process); in single-user mode every host
is the caller's own user and only HOME (and PATH) tell the hosts apart.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dr_console.lab.errors import LabError

BASE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class Account:
    """A lab host's OS user and home, as the lab runs commands for it."""

    name: str
    uid: int
    gid: int
    home: Path
    # Directories searched before any other PATH (single-user mode: the lab's `ssh` wrapper).
    path_prefix: str = ""

    def environment(self, path: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {
            "HOME": str(self.home),
            "USER": self.name,
            "LOGNAME": self.name,
            "SHELL": "/bin/bash",
            "PATH": self.path_prefix + path,
            "LANG": "C.UTF-8",
        }
        if extra:
            env.update(extra)
        return env


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    account: Account | None = None,
    path: str = BASE_PATH,
    input_text: str | None = None,
    check: bool = True,
    capture: bool = True,
    env_extra: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run argv (as ACCOUNT when given); raise LabError on timeout, a missing program, or with
    check=True a non-zero exit, quoting the command and the end of its stderr."""
    argv = [str(a) for a in argv]
    who = f" as {account.name}" if account else ""
    kwargs: dict[str, object] = {}
    if account is not None:
        cwd = account.home if account.home.is_dir() else Path("/")
        user, group, extra_groups = identity(account)
        kwargs.update(
            user=user,
            group=group,
            extra_groups=extra_groups,
            env=account.environment(path, env_extra),
            cwd=str(cwd),
        )
    elif env_extra:
        kwargs["env"] = {**os.environ, **env_extra}
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    try:
        cp: subprocess.CompletedProcess[str] = subprocess.run(
            argv,
            input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            text=True,
            timeout=timeout,
            check=False,
            **kwargs,  # type: ignore[call-overload]
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"`{shlex.join(argv)}`{who} did not finish within {timeout:g} s") from exc
    except OSError as exc:
        raise LabError(f"cannot run `{shlex.join(argv)}`{who}: {exc.strerror or exc}") from exc
    if check and cp.returncode != 0:
        raise LabError(
            f"`{shlex.join(argv)}`{who} failed (exit {cp.returncode}): "
            f"{tail(cp.stderr or cp.stdout)}"
        )
    return cp


def identity(account: Account) -> tuple[int | None, int | None, list[int] | None]:
    """subprocess's (user, group, extra_groups) to run a child as ACCOUNT: all None when that is
    who we are already (setgroups needs root, so a single-user lab must not ask for it)."""
    if account.uid == os.geteuid() and account.gid == os.getegid():
        return None, None, None
    return account.uid, account.gid, []


def tail(text: str | None, lines: int = 6) -> str:
    if not text:
        return "(no output)"
    return " | ".join(line for line in text.strip().splitlines()[-lines:] if line.strip())


# --- processes -------------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """True when PID runs and is not a zombie (a zombie child of ours is reaped here)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state in ("Z", "X"):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def read_pidfile(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").split()
        return int(text[0]) if text else None
    except (OSError, ValueError):
        return None


def pids_of_uid(uid: int) -> list[int]:
    """Every live process whose real uid is UID."""
    found: list[int] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", encoding="ascii", errors="replace") as fh:
                for line in fh:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            found.append(int(entry.name))
                        break
        except (OSError, ValueError):
            continue
    return [pid for pid in found if pid_alive(pid)]


def pids_with_home(uid: int, home: Path) -> list[int]:
    """Live processes of UID started with HOME set to HOME or a directory below it: the lab's
    processes in single-user mode, where the user also runs everything else of theirs."""
    found = []
    for pid in pids_of_uid(uid):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        value = next((e[5:] for e in environ if e.startswith(b"HOME=")), None)
        if value is not None and (value == bytes(home) or value.startswith(bytes(home) + b"/")):
            found.append(pid)
    return found


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def terminate(pids: Sequence[int], *, grace: float = 10.0) -> list[int]:
    """SIGTERM, wait up to GRACE seconds, then SIGKILL what is left; return pids still alive."""
    _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    alive = [p for p in pids if pid_alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if pid_alive(p)]
    if alive:
        _signal_all(alive, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [p for p in alive if pid_alive(p)]
    return alive


def _signal_all(pids: Sequence[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_until(
    what: str, predicate: Callable[[], bool], *, timeout: float, interval: float = 0.2
) -> None:
    """Poll PREDICATE until it is true, or raise LabError after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
