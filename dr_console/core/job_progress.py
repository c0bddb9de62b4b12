"""Progress of a running Barman job, read from the lines Barman prints (Barman 3.19 wording).

Barman gives no percentage; what it gives is the phase it is in (backup start, file copy, finalise,
WAL wait), the WAL segments it processes and, for switch-wal, the WAL file it closed. Lines not
recognised leave the phase as it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_WAL_NAME = r"[0-9A-F]{24}"
_WAL_LINE = re.compile(rf"^\s+({_WAL_NAME})(\.[0-9A-F]{{8}}\.backup|\.history|\.partial)?\s*$")
_CLOSED = re.compile(rf"The WAL file ({_WAL_NAME}) has been closed on server")
_WAITING = re.compile(rf"Waiting for the WAL file ({_WAL_NAME})")
_COPY_START = re.compile(r"Starting backup copy via (\S+) for (\S+)(?: \((\d+) jobs?\))?")
_COPY_DONE = re.compile(r"Copy done \(time: ([^)]*)\)")
_BACKUP_START = re.compile(r"Starting backup using (\S+) method for server (\S+)")
_BACKUP_DONE = re.compile(r"Backup completed \(start time: [^,]*, elapsed time: ([^)]*)\)")
_BACKUP_SIZE = re.compile(r"Backup size: ([^.]+(?:\.\d+)? \S+)\.")
_RESTORE_START = re.compile(r"Starting (local|remote) restore for server (\S+) using backup (\S+)")
_ERROR = re.compile(r"^(?:ERROR|EXCEPTION):\s*(.*)$")
# Barman's reasons for refusing a delete (a WARNING), followed by a bare "Cannot delete backup".
_SKIP_REDUNDANCY = re.compile(
    r"Skipping delete of backup (\S+) for server (\S+) due to minimum redundancy requirements "
    r"\(minimum redundancy = (\d+), current redundancy = (\d+)\)"
)
_SKIP_KEEP = re.compile(
    r"Skipping delete of backup (\S+) for server (\S+) as it has a current keep"
)

# Fixed phrases, in the order Barman prints them. (prefix, phase)
_PHRASES: tuple[tuple[str, str], ...] = (
    ("Backup start at LSN:", "backup started"),
    ("WAL segments preceding the current backup have been found", "removing older WAL"),
    ("Asking PostgreSQL server to finalize the backup", "finalising"),
    ("Processing xlog segments from", "archiving WAL"),
    ("Copying the base backup", "copying the base backup"),
    ("Copying required WAL segments", "copying WAL segments"),
    ("Generating recovery configuration", "generating recovery configuration"),
    ("Identify dangerous settings", "checking settings"),
    ("Restore operation completed", "restore completed"),
    ("Your PostgreSQL server has been successfully prepared for recovery", "recovery prepared"),
    ("Starting WAL archiving for server", "archiving WAL"),
)


@dataclass
class JobProgress:
    """What the job's log says so far. Feed it lines in order."""

    phase: str | None = None
    wal_segments: int = 0  # WAL segments listed as processed/removed
    last_wal: str | None = None  # the last WAL segment listed
    closed_wal: str | None = None  # switch-wal: the WAL file closed on the server
    closed_wal_arrived: bool = False  # ... and then listed as archived on the node
    waiting_wal: str | None = None
    copy_jobs: int | None = None
    copy_time: str | None = None
    backup_size: str | None = None
    error: str | None = None  # the last ERROR/EXCEPTION line (or the reason Barman gave before)
    refusal: str | None = None  # why Barman refused the operation, in its WARNING before the error
    lines: int = 0

    def feed(self, line: str) -> str | None:
        """Account for one line; returns the phase (possibly unchanged)."""
        self.lines += 1
        text = line.rstrip("\r\n")
        if m := _WAL_LINE.match(text):
            self.wal_segments += 1
            self.last_wal = m.group(1)
            if self.closed_wal is not None and self.last_wal == self.closed_wal:
                self.closed_wal_arrived = True
                self.phase = f"WAL {self.closed_wal} closed and archived"
            return self.phase
        stripped = text.strip()
        if m := _SKIP_REDUNDANCY.search(stripped):
            self.refusal = (
                f"Barman did not delete backup {m.group(1)}: server {m.group(2)} must keep at "
                f"least {m.group(3)} backups (minimum_redundancy = {m.group(3)}) and has "
                f"{m.group(4)}; take a new backup first, or lower minimum_redundancy in the "
                "server's Barman configuration"
            )
        elif m := _SKIP_KEEP.search(stripped):
            self.refusal = (
                f"Barman did not delete backup {m.group(1)} of {m.group(2)}: it is kept (a keep "
                "annotation); release it first (u), then delete"
            )
        elif m := _ERROR.match(stripped):
            self.error = self.refusal or m.group(1)
            self.phase = f"error: {self.error}"
        elif m := _CLOSED.search(stripped):
            self.closed_wal = m.group(1)
            self.phase = f"WAL {self.closed_wal} closed"
        elif m := _WAITING.search(stripped):
            self.waiting_wal = m.group(1)
            self.phase = f"waiting for WAL {self.waiting_wal}"
        elif m := _BACKUP_START.search(stripped):
            self.phase = f"starting backup ({m.group(1)})"
        elif m := _COPY_START.search(stripped):
            self.copy_jobs = int(m.group(3)) if m.group(3) else None
            jobs = f", {self.copy_jobs} jobs" if self.copy_jobs else ""
            self.phase = f"copying files ({m.group(1)}{jobs})"
        elif m := _COPY_DONE.search(stripped):
            self.copy_time = m.group(1)
            self.phase = f"copy done ({self.copy_time})"
        elif m := _BACKUP_SIZE.search(stripped):
            self.backup_size = m.group(1)
        elif m := _BACKUP_DONE.search(stripped):
            self.phase = f"backup completed ({m.group(1)})"
        elif m := _RESTORE_START.search(stripped):
            self.phase = f"starting {m.group(1)} restore of {m.group(3)}"
        else:
            for prefix, phase in _PHRASES:
                if stripped.startswith(prefix):
                    self.phase = phase
                    break
        return self.phase

    def feed_all(self, lines: Iterable[str]) -> str | None:
        for line in lines:
            self.feed(line)
        return self.phase
