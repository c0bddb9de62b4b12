"""The audit journal of jobs on the console's host: append-only JSON lines, one event per line.

Every event is written with a single os.write() on an O_APPEND descriptor under an exclusive
flock, then fsync'd. A short write (full disk) is rolled back with ftruncate, so the file never
ends in a truncated line written by us; a reader still skips and reports one (a crash, an older
version, another tool).
"""

from __future__ import annotations

import contextlib
import enum
import errno
import fcntl
import getpass
import json
import logging
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

JOURNAL_FILE = "journal.jsonl"
_SECRET_MARKERS = ("password=", "passwd=", "pgpassword")


# Room an operation needs in the journal (its events are a few hundred bytes each).
MIN_FREE_BYTES = 16 * 1024


class JournalError(Exception):
    """The journal could not be written or read; the message is meant for the user."""


class JournalEvent(enum.StrEnum):
    STARTED = "started"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    ATTACHED = "attached"


@dataclass(frozen=True)
class JobRecord:
    """One job as the journal knows it, folded from its events."""

    job_id: str
    node: str
    server: str | None
    operation: str
    argv: tuple[str, ...]
    user: str | None
    ssh_client: str | None
    started_at: datetime | None
    log_path: str | None = None
    ended_at: datetime | None = None
    exit_status: int | None = None
    cancelled: bool = False
    attached_at: tuple[datetime, ...] = ()

    @property
    def state(self) -> str:
        """running, finished, failed or cancelled (as far as this journal saw)."""
        if self.cancelled:
            return "cancelled"
        if self.exit_status is None:
            return "running"
        return "finished" if self.exit_status == 0 else "failed"


@dataclass(frozen=True)
class JournalRead:
    records: list[JobRecord]
    problems: list[str] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def check_private_dir(path: Path, what: str) -> None:
    """Refuse a directory another user could plant files or links in (JournalError)."""
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise JournalError(f"refusing the {what} {path}: it is not a directory")
    if st.st_uid != os.geteuid():
        raise JournalError(
            f"refusing the {what} {path}: it is owned by uid {st.st_uid}, not by you; "
            "set journal_dir to a directory of your own"
        )
    if stat.S_IMODE(st.st_mode) & 0o022:
        raise JournalError(
            f"refusing the {what} {path}: others may write to it (mode "
            f"{stat.S_IMODE(st.st_mode):o}); `chmod 700 {path}` or set journal_dir to a "
            "directory of your own"
        )


def os_user() -> str | None:
    """The OS user running drconsole (None when the system cannot say)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


class Journal:
    """Appends job events to <journal_dir>/journal.jsonl (dir 0700, file 0600)."""

    def __init__(self, journal_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(os.path.expanduser(os.fspath(journal_dir)))
        self.path = self.dir / JOURNAL_FILE

    def record(
        self,
        event: JournalEvent,
        *,
        job_id: str,
        node: str,
        server: str | None,
        operation: str,
        argv: Sequence[str],
        exit_status: int | None = None,
        log_path: str | None = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Append one event; returns what was written. Raises JournalError."""
        entry: dict[str, Any] = {
            "event": str(event),
            "job_id": job_id,
            "node": node,
            "server": server,
            "operation": operation,
            "argv": list(argv),
            "user": os_user(),
            "ssh_client": os.environ.get("SSH_CLIENT") or None,
            "at": _iso(at or _now()),
            "exit_status": exit_status,
            "log_path": log_path,
        }
        self.append_line(json.dumps(entry, ensure_ascii=False, separators=(",", ":")))
        return entry

    def append_line(self, line: str) -> None:
        lowered = line.lower()
        for marker in _SECRET_MARKERS:
            if marker in lowered:
                raise JournalError(
                    f"refusing to write to the journal {self.path}: the entry looks like it "
                    f"holds a secret ({marker!r})"
                )
        data = (line.rstrip("\n") + "\n").encode("utf-8")
        if data.count(b"\n") != 1:
            raise JournalError("a journal entry must be a single line")
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # never glue our event onto someone's partial line
            try:
                written = os.write(fd, data)
                if written != len(data):
                    raise OSError(
                        errno.ENOSPC,
                        f"{os.strerror(errno.ENOSPC)} (wrote {written} of {len(data)} bytes)",
                    )
                os.fsync(fd)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                raise JournalError(
                    f"could not write to the journal {self.path}: {exc.strerror or exc}"
                ) from exc
        finally:
            os.close(fd)  # also releases the flock

    def check_writable(self) -> None:
        """Create the journal if needed, make sure it can be opened for appending and that its
        file system has room for the records of an operation (a full disk is refused up front,
        not found out once the operation runs unrecorded)."""
        fd = self._open()
        try:
            st = os.fstatvfs(fd)
        except OSError:
            st = None
        finally:
            os.close(fd)
        if st is not None and st.f_bavail * st.f_frsize < MIN_FREE_BYTES:
            raise JournalError(
                f"could not write the journal {self.path}: {os.strerror(errno.ENOSPC)} "
                f"({st.f_bavail * st.f_frsize} bytes free)"
            )

    def _open(self) -> int:
        try:
            if not self.dir.is_dir():
                os.makedirs(self.dir, mode=0o700, exist_ok=True)
                os.chmod(self.dir, 0o700)
            check_private_dir(self.dir, "journal directory")
            fd = os.open(
                self.path,
                os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK,
                0o600,
            )
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise JournalError(
                    f"refusing the journal {self.path}: it is a symbolic link (someone may be "
                    "redirecting drconsole's writes to another file); remove it"
                ) from exc
            raise JournalError(
                f"could not open the journal {self.path}: {exc.strerror or exc}"
            ) from exc
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            os.close(fd)
            what = "not a regular file" if not stat.S_ISREG(st.st_mode) else (
                f"owned by uid {st.st_uid}, not by you")
            raise JournalError(f"refusing the journal {self.path}: it is {what}")
        os.set_blocking(fd, True)
        if stat.S_IMODE(st.st_mode) & 0o077:
            # Readable by the operator only, even if someone loosened it.
            with contextlib.suppress(OSError):
                os.fchmod(fd, 0o600)
        return fd

    def read(self) -> JournalRead:
        return read_journal_report(self.path)


def read_journal(
    path: str | os.PathLike[str], on_problem: Callable[[str], None] | None = None
) -> list[JobRecord]:
    """Fold the journal's events into one record per (node, job id), oldest first.

    A corrupt or partial line is skipped and reported through on_problem (default: logged).
    """
    report = read_journal_report(path)
    for problem in report.problems:
        if on_problem is not None:
            on_problem(problem)
        else:
            log.warning("%s", problem)
    return report.records


def read_journal_report(path: str | os.PathLike[str]) -> JournalRead:
    path = Path(os.path.expanduser(os.fspath(path)))
    if path.is_dir():
        path = path / JOURNAL_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return JournalRead(records=[])
    except OSError as exc:
        reason = "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror or exc
        raise JournalError(f"could not read the journal {path}: {reason}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise JournalError(f"could not read the journal {path}: it is not a regular file")
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise JournalError(f"could not read the journal {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    problems: list[str] = []
    lines = raw.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    if tail:
        problems.append(
            f"{path}: ignored a partial last line ({len(tail)} bytes, no newline): "
            "a write was interrupted"
        )
    records: dict[tuple[str, str], JobRecord] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
            if not isinstance(event, dict):
                raise ValueError("not an object")
            _fold(records, event)
        except RecursionError:
            problems.append(f"{path}:{number}: ignored a corrupt line (nested too deeply)")
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"{path}:{number}: ignored a corrupt line ({exc})")
    return JournalRead(records=list(records.values()), problems=problems)


def _fold(records: dict[tuple[str, str], JobRecord], event: dict[str, Any]) -> None:
    kind = JournalEvent(event["event"])
    key = (str(event["node"]), str(event["job_id"]))
    at = _parse_time(event.get("at"))
    exit_status = event.get("exit_status")
    if exit_status is not None and not isinstance(exit_status, int):
        raise ValueError(f"exit_status {exit_status!r} is not an integer")
    current = records.get(key)
    if current is None:
        current = JobRecord(
            job_id=key[1],
            node=key[0],
            server=event.get("server"),
            operation=str(event["operation"]),
            argv=tuple(str(a) for a in event.get("argv") or ()),
            user=event.get("user"),
            ssh_client=event.get("ssh_client"),
            started_at=at if kind is JournalEvent.STARTED else None,
            log_path=event.get("log_path"),
        )
    if kind is JournalEvent.STARTED:
        current = replace(current, started_at=at, log_path=event.get("log_path"))
    elif kind is JournalEvent.ATTACHED:
        attached = (*current.attached_at, at) if at is not None else current.attached_at
        current = replace(
            current,
            attached_at=attached,
            log_path=current.log_path or event.get("log_path"),
            exit_status=current.exit_status if exit_status is None else exit_status,
        )
    elif kind is JournalEvent.FINISHED:
        current = replace(current, ended_at=at, exit_status=exit_status)
    elif kind is JournalEvent.CANCELLED:
        current = replace(
            current,
            cancelled=True,
            ended_at=at if exit_status is not None else current.ended_at,
            exit_status=current.exit_status if exit_status is None else exit_status,
        )
    records[key] = current
