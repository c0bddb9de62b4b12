"""Messages workers post to the app; only the app's handlers change state."""

from __future__ import annotations

from textual.message import Message

from dr_console.models import BackupDetail, FleetSnapshot, Job


class SnapshotReady(Message):
    def __init__(self, fleet: FleetSnapshot) -> None:
        super().__init__()
        self.fleet = fleet


class CollectFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class PollFinished(Message):
    """Sent after SnapshotReady/CollectFailed, so the timer is re-armed only when a poll is over."""


class BackupDetailReady(Message):
    def __init__(self, detail: BackupDetail) -> None:
        super().__init__()
        self.detail = detail


class BackupDetailFailed(Message):
    def __init__(self, backup_id: str, error: str) -> None:
        super().__init__()
        self.backup_id = backup_id
        self.error = error


class JobStarted(Message):
    def __init__(self, job: Job, title: str) -> None:
        super().__init__()
        self.job = job
        self.title = title


class JobEnded(Message):
    """A followed job has ended; `closed_wal` is the WAL a switch-wal closed (from its log)."""

    def __init__(self, job: Job, error: str | None, closed_wal: str | None) -> None:
        super().__init__()
        self.job = job
        self.error = error
        self.closed_wal = closed_wal


class JobsListed(Message):
    def __init__(self, node: str, jobs: list[Job]) -> None:
        super().__init__()
        self.node = node
        self.jobs = jobs


class JobsListFailed(Message):
    def __init__(self, node: str, error: str) -> None:
        super().__init__()
        self.node = node
        self.error = error


class OperationFailed(Message):
    """An operation could not start, or a job could not be followed or cancelled."""

    def __init__(self, title: str, error: str) -> None:
        super().__init__()
        self.title = title
        self.error = error
