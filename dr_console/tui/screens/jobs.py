"""The jobs screen: every job on every node, running and finished, in one keyed table."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Footer, Static

from dr_console.core import fmt
from dr_console.models import Job, JobState
from dr_console.tui import keymap
from dr_console.tui.jobs_board import Arrival
from dr_console.tui.screens.base import ConsoleScreen
from dr_console.tui.screens.job_log import JobLogScreen

COLUMNS: tuple[tuple[str, str], ...] = (
    ("node", "node"),
    ("operation", "operation"),
    ("server", "server"),
    ("state", "state"),
    ("started", "started"),
    ("elapsed", "elapsed"),
    ("phase", "phase / progress"),
)
SCAN_INTERVAL = 3.0  # seconds between two listings of the nodes while this screen is shown


def job_key(job: Job) -> str:
    return f"{job.node}/{job.job_id}"


def phase_text(job: Job, phase: str | None, arrival: Arrival | None) -> str:
    if arrival is not None:
        if arrival.confirmed:
            when = arrival.arrived_at.strftime("%H:%M:%S") if arrival.arrived_at else "?"
            return f"WAL {arrival.wal} closed, arrived {when}"
        return f"WAL {arrival.wal} closed, arrival not seen yet"
    return phase or job.phase or "-"


def job_cells(job: Job, phase: str | None, arrival: Arrival | None, now: datetime) -> list[str]:
    started = "-"
    if job.started_at is not None:
        same_day = job.started_at.date() == now.date()
        started = job.started_at.strftime("%H:%M:%S" if same_day else "%m-%d %H:%M")
    state = job.state.value.upper()
    if job.exit_status is not None and job.state is not JobState.SUCCEEDED:
        state += f" ({job.exit_status})"
    return [
        job.node,
        job.operation,
        job.server or "-",
        state,
        started,
        fmt.duration(job.elapsed(now)),
        phase_text(job, phase, arrival),
    ]


class JobsTable(DataTable[Text]):
    def __init__(self) -> None:
        super().__init__(id="jobs-table", cursor_type="row", zebra_stripes=True)
        self._shown: dict[str, list[str]] = {}

    def on_mount(self) -> None:
        for key, title in COLUMNS:
            self.add_column(title, key=key)

    @property
    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def show_jobs(self, rows: dict[str, list[str]]) -> None:
        """Keyed cell updates; rows are re-laid only when the order changes (a job starts or
        ends), and the cursor stays on the job it was on."""
        keep = self.selected_key
        if list(rows) != list(self._shown):
            self.clear()
            self._shown = {}
        for key, cells in rows.items():
            old = self._shown.get(key)
            if old is None:
                self.add_row(*(Text(c) for c in cells), key=key)
            else:
                for (column, _), value, before in zip(COLUMNS, cells, old, strict=True):
                    if value != before:
                        self.update_cell(key, column, Text(value))
            self._shown[key] = cells
        if keep is not None and keep in self._shown:
            index = self.get_row_index(keep)
            if index != self.cursor_row:
                self.move_cursor(row=index, animate=False)


class JobsScreen(ConsoleScreen):
    SCOPE = "jobs"
    BINDINGS = keymap.bindings("jobs")

    def __init__(self) -> None:
        super().__init__(id="jobs-screen")

    def compose(self) -> ComposeResult:
        yield Static(id="jobs-header")
        yield JobsTable()
        yield Static(id="job-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(JobsTable).focus()
        self.ready = True
        self.console.scan_jobs()
        self.set_interval(SCAN_INTERVAL, self.console.scan_jobs)
        self.refresh_view()

    def _selected(self) -> Job | None:
        key = self.query_one(JobsTable).selected_key
        if key is None:
            return None
        node, _, job_id = key.partition("/")
        return self.console.board.jobs.get((node, job_id))

    def refresh_view(self) -> None:
        app = self.console
        board = app.board
        now = app.now()
        jobs = board.ordered()
        manager = app.jobs
        rows = {}
        for job in jobs:
            phase = manager.progress(job).phase if manager is not None else None
            arrival = board.arrivals.get((job.node, job.job_id))
            rows[job_key(job)] = job_cells(job, phase, arrival, now)
        running = sum(1 for j in jobs if j.running)
        header = Text()
        header.append(f"{len(jobs)} jobs, {running} running", style="bold")
        nodes = len(app.config.nodes)
        header.append(f" on {nodes} nodes (listed every {SCAN_INTERVAL:.0f}s)")
        if app.jobs is None:
            header.append("\nno job manager: operations are not available", style="bold")
        for node, error in sorted(board.node_errors.items()):
            header.append(f"\n{node}: jobs not listed: {error}", style="bold")
        self.query_one("#jobs-header", Static).update(header)
        self.query_one(JobsTable).show_jobs(rows)
        self._show_detail()

    def _show_detail(self) -> None:
        job = self._selected()
        detail = self.query_one("#job-detail", Static)
        if job is None:
            detail.update("no jobs yet: b, w or c on a server start one")
            return
        who = job.user or "?"
        if job.ssh_client:
            who += f" from {job.ssh_client.split()[0]}"
        app = self.console
        phase = app.jobs.progress(job).phase if app.jobs is not None else None
        arrival = app.board.arrivals.get((job.node, job.job_id))
        exit_text = "" if job.exit_status is None else f", exit {job.exit_status}"
        detail.update(
            Text(
                f"{job.state.value.upper()}{exit_text}: {phase_text(job, phase, arrival)}\n"
                f"job {job.job_id} by {who}: {' '.join(job.argv)}\nlog {job.log_path}"
            )
        )

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_job(True)

    def action_open_job(self, from_start: bool = True) -> None:
        job = self._selected()
        manager = self.console.jobs
        if job is None or manager is None:
            return
        self.app.push_screen(JobLogScreen(manager, job, from_start=from_start))

    def action_cancel_job(self) -> None:
        job = self._selected()
        if job is None:
            self.notify("no job selected", timeout=3)
            return
        self.console.cancel_job(job)

    def action_back(self) -> None:
        self.dismiss()
