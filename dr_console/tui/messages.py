"""Messages workers post to the app; only the app's handlers change state."""

from __future__ import annotations

from textual.message import Message

from dr_console.models import BackupDetail, FleetSnapshot


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
