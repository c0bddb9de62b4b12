"""A log that follows a job's output on its node: batched writes, bounded by max_lines."""

from __future__ import annotations

from textual.worker import Worker

from dr_console.core.jobs import JobError, JobManager
from dr_console.core.transport import TransportError
from dr_console.models import Job
from dr_console.tui.widgets.buffered_log import BufferedLog

MAX_LINES = 10_000


class JobLog(BufferedLog):
    """Follow a job with `follow(manager, job)`."""

    DEFAULT_CSS = "JobLog { height: 1fr; }"

    def __init__(self, *, max_lines: int = MAX_LINES, id: str | None = None) -> None:
        super().__init__(max_lines=max_lines, id=id)
        self.received = 0  # lines received from the node so far
        self.ended = False  # the tail ended: the job is over and its log drained
        self.error: str | None = None
        self._worker: Worker[None] | None = None

    def follow(self, manager: JobManager, job: Job, *, from_start: bool = False) -> None:
        if self._worker is not None:
            self._worker.cancel()
        self.reset()
        self.received = 0
        self.ended = False
        self.error = None
        self._worker = self.run_worker(
            self._tail(manager, job, from_start),
            group="job-log",
            exclusive=True,
            exit_on_error=False,
        )

    async def _tail(self, manager: JobManager, job: Job, from_start: bool) -> None:
        try:
            async for line in manager.tail(job, from_start=from_start):
                self.add(line)
                self.received += 1
        except (JobError, TransportError) as exc:
            self.error = str(exc)
            self.add(f"-- stopped following: {exc}")
        self.ended = True
