"""A job's live log: what it is, where it is (phase, elapsed), and its output as it is written."""

from __future__ import annotations

from datetime import UTC, datetime

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from dr_console.core import fmt
from dr_console.core.barman import BarmanClient
from dr_console.core.jobs import JobError, JobManager
from dr_console.core.transport import TransportError
from dr_console.models import Job
from dr_console.tui.widgets.barman_log import BarmanLog
from dr_console.tui.widgets.buffered_log import BufferedLog
from dr_console.tui.widgets.job_log import JobLog

STATUS_INTERVAL = 1.0  # how often the header (state, phase, elapsed) is re-read from the node
FOLLOWING = "following the end of the log"


def job_header(job: Job, phase: str | None, now: datetime) -> str:
    what = f"{job.operation} {job.server}" if job.server else job.operation
    state = job.state.value.upper()
    if job.exit_status is not None:
        state += f" (exit {job.exit_status})"
    parts = [f"{what} on {job.node}", state, f"elapsed {fmt.duration(job.elapsed(now))}"]
    if phase:
        parts.append(phase)
    return " · ".join(parts) + f"\njob {job.job_id}  {job.log_path}"


def follow_line(job_log: BufferedLog, barman_log: BufferedLog) -> str:
    """Whether each log follows its end; a log the user scrolled back in holds its new lines."""
    line = job_log.held_text() or FOLLOWING
    if barman_log.display and barman_log.held:
        line += f" · barman.log {barman_log.held_text()}"
    return line


class JobLogScreen(Screen[None]):
    DEFAULT_CSS = "JobLogScreen #job-log-follow { color: $text-muted; }"
    BINDINGS = [
        Binding("escape,q", "close", "back", id="job-log-close"),
        Binding("s", "from_start", "from start", id="job-log-from-start"),
        Binding("e", "from_end", "last 200 lines", id="job-log-from-end"),
        Binding("l", "barman_log", "barman.log", id="job-log-barman-log"),
    ]

    def __init__(self, manager: JobManager, job: Job, *, from_start: bool = False) -> None:
        super().__init__(id="job-log-screen")
        self.manager = manager
        self.job = job
        self.from_start = from_start

    def compose(self) -> ComposeResult:
        yield Static(job_header(self.job, None, datetime.now(UTC)), id="job-header")
        yield Static(FOLLOWING, id="job-log-follow")
        yield JobLog(id="job-log")
        yield BarmanLog(id="barman-log")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(BarmanLog).display = False
        self.query_one(JobLog).follow(self.manager, self.job, from_start=self.from_start)
        self.set_interval(STATUS_INTERVAL, self._refresh_status)

    async def _refresh_status(self) -> None:
        if self.job.running:
            self.run_worker(self._reload(), group="job-status", exclusive=True, exit_on_error=False)
        self._show()

    async def _reload(self) -> None:
        try:
            self.job = await self.manager.get(self.job.node, self.job.job_id)
        except (JobError, TransportError) as exc:
            self.notify(f"job {self.job.job_id}: {exc}", severity="warning")
        self._show()

    def _show(self) -> None:
        phase = self.manager.progress(self.job).phase
        self.query_one("#job-header", Static).update(job_header(self.job, phase, datetime.now(UTC)))

    def _show_follow(self) -> None:
        line = follow_line(self.query_one(JobLog), self.query_one(BarmanLog))
        self.query_one("#job-log-follow", Static).update(line)

    def on_buffered_log_held(self, event: BufferedLog.Held) -> None:
        self._show_follow()

    def action_close(self) -> None:
        self.dismiss()

    def action_from_start(self) -> None:
        self.query_one(JobLog).follow(self.manager, self.job, from_start=True)

    def action_from_end(self) -> None:
        self.query_one(JobLog).follow(self.manager, self.job, from_start=False)

    def action_barman_log(self) -> None:
        """Show/hide the node's barman.log filtered to the job's server (followed once shown)."""
        pane = self.query_one(BarmanLog)
        pane.display = not pane.display
        self._show_follow()  # the line names the pane's held lines only while it is shown
        if not pane.display or pane.following:
            return
        job = self.job
        cfg = self.manager.config.node(job.node)
        transport = self.manager.transports.get(job.node)
        if transport is None or job.server is None:
            pane.write_line(f"-- no barman.log to filter: job {job.job_id} names no server")
            return
        client = BarmanClient(transport, barman=cfg.barman, config_file=cfg.barman_config)
        pane.follow(transport, client, job.server)
