"""The console's operations and jobs: confirm, start, follow, re-attach, cancel (an App mixin).

Workers (named groups, exit_on_error=False) talk to the nodes and post messages; the handlers here
change the jobs board and tell the operator. A failure is a notification, never a crash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from functools import partial

from textual.app import App

from dr_console.config import Config
from dr_console.core.barman import BarmanClient
from dr_console.core.jobs import JobManager
from dr_console.core.journal import JournalError
from dr_console.core.operations import Operation, OperationRefused, OpKind, plan
from dr_console.models import Backup, FleetSnapshot, Job, JobState
from dr_console.tui.jobs_board import JobsBoard
from dr_console.tui.messages import (
    JobEnded,
    JobsListed,
    JobsListFailed,
    JobStarted,
    OperationFailed,
)
from dr_console.tui.screens.confirm import ConfirmScreen
from dr_console.tui.state import ConsoleState

OPS_GROUP = "operations"
WATCH_GROUP = "job-watch"
SCAN_GROUP = "jobs-scan"
WATCH_RETRY = 5.0  # seconds between two attempts to follow a job whose node is unreachable
JOURNAL = "audit journal"
NO_JOBS = "operations are not available: this console has no job manager (no node connections)"


def _error(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def job_title(job: Job) -> str:
    what = f"{job.operation} {job.server}" if job.server else job.operation
    return f"{what} on {job.node}"


class OperationsMixin(App[int]):
    config: Config
    state: ConsoleState
    readonly: bool
    jobs: JobManager | None
    board: JobsBoard
    now: Callable[[], datetime]
    _scanning: bool
    _reachable: dict[str, bool]

    def request_poll(self, *, force_slow: bool = False) -> None:
        raise NotImplementedError  # DrConsoleApp's

    def refresh_views(self) -> None:
        raise NotImplementedError  # DrConsoleApp's

    # --- starting operations --------------------------------------------------------------------

    def operate(self, kind: OpKind, key: str, backup_id: str | None = None) -> None:
        """Plan `kind` for the server `key` ("node/server"), confirm it, then start it."""
        if self.readonly:
            self.notify(f"read-only: {kind.value} is not available", severity="warning")
            return
        if self.jobs is None:
            self.notify(NO_JOBS, severity="error")
            return
        state = self.state.servers.get(key)
        if state is None:
            self.notify(self.state.why_no_server(key), severity="warning")
            return
        backup: Backup | None = None
        catalogue = state.catalogue.value
        if backup_id is not None and catalogue is not None:
            backup = next((b for b in catalogue.backups if b.backup_id == backup_id), None)
        transport = self.jobs.transports.get(state.node)
        if transport is None:
            self.notify(f"{kind.value}: no connection to node {state.node}", severity="error")
            return
        try:
            cfg = self.config.node(state.node)
            client = BarmanClient(transport, barman=cfg.barman, config_file=cfg.barman_config)
            op = plan(
                kind,
                client,
                node=state.node,
                server=state.server,
                role=state.snapshot.role,
                primary=cfg.primary,
                backup=backup,
            )
        except OperationRefused as exc:
            self.notify(str(exc), title=kind.value, severity="warning", timeout=8)
            return
        except (KeyError, ValueError) as exc:  # unknown node, or a value Barman must not get
            self.notify(f"{kind.value}: {_error(exc)}", severity="error", timeout=8)
            return
        lines = [op.explain, "", f"on node {op.node}:", "  " + " ".join(op.argv)]
        self.push_screen(
            ConfirmScreen(op.title, lines, typed=op.confirm_word), partial(self._confirmed, op)
        )

    def _confirmed(self, op: Operation, yes: bool | None) -> None:
        if not yes:
            self.notify(f"{op.title}: cancelled, nothing done", timeout=3)
            return
        self.run_worker(
            self._start(op), name=f"start {op.title}", group=OPS_GROUP, exit_on_error=False
        )

    async def _start(self, op: Operation) -> None:
        assert self.jobs is not None
        try:
            job = await self.jobs.start(op.node, op.server, op.job_operation, list(op.argv))
        except Exception as exc:  # refused (lock), node down, journal: all said to the user
            self.post_message(OperationFailed(op.title, _error(exc)))
        else:
            self.post_message(JobStarted(job, op.title))

    def on_job_started(self, message: JobStarted) -> None:
        job = message.job
        self.board.put(job)
        self.notify(f"{message.title}: started (job {job.job_id}); j shows the jobs", timeout=5)
        self.watch_job(job)
        self.refresh_views()

    def on_operation_failed(self, message: OperationFailed) -> None:
        if message.title == JOURNAL:
            if self.board.journal_error is not None:
                return
            self.board.journal_error = message.error
        self.notify(f"{message.title}: {message.error}", severity="error", timeout=10)

    # --- following jobs -------------------------------------------------------------------------

    def watch_job(self, job: Job) -> None:
        """Follow a running job in the background until it ends (its log feeds its progress)."""
        key = (job.node, job.job_id)
        if self.jobs is None or key in self.board.watched:
            return
        self.board.watched.add(key)
        self.run_worker(
            self._watch(job), name=f"watch {job.job_id}", group=WATCH_GROUP, exit_on_error=False
        )

    async def _watch(self, job: Job) -> None:
        manager = self.jobs
        assert manager is not None
        try:
            async for _line in manager.tail(job, from_start=True):
                pass
            ended = await manager.get(job.node, job.job_id)
            while ended.running:  # the log drained just before the exit status was written
                await asyncio.sleep(0.2)
                ended = await manager.get(job.node, job.job_id)
        except Exception as exc:  # the node went away: re-attached when it comes back
            self.board.watched.discard((job.node, job.job_id))
            self.post_message(OperationFailed(f"following {job_title(job)}", _error(exc)))
            return
        progress = manager.progress(ended)
        self.post_message(JobEnded(ended, progress.error, progress.closed_wal))

    def on_job_ended(self, message: JobEnded) -> None:
        job = message.job
        self.board.put(job)
        self.board.watched.discard((job.node, job.job_id))
        state = job.state.value.upper()
        exit_text = "" if job.exit_status is None else f" (exit {job.exit_status})"
        ok = job.state is JobState.SUCCEEDED
        detail = f": {message.error}" if message.error and not ok else ""
        text = f"{job_title(job)}: {state}{exit_text}{detail}"
        self.notify(text, severity="information" if ok else "error", timeout=10)
        if job.operation == OpKind.SWITCH_WAL.value and message.closed_wal:
            self.board.expect_arrival(job, message.closed_wal)
        self.request_poll(force_slow=True)  # the catalogue shows what the job did
        self.refresh_views()

    # --- re-attach ------------------------------------------------------------------------------

    def scan_jobs(self, nodes: list[str] | None = None) -> None:
        """List the jobs of `nodes` (all by default); running ones are re-attached."""
        if self.jobs is None or self._scanning:
            return
        self._scanning = True
        wanted = nodes if nodes is not None else [n.name for n in self.config.nodes]
        self.run_worker(self._scan(wanted), name="list jobs", group=SCAN_GROUP, exit_on_error=False)

    async def _scan(self, nodes: list[str]) -> None:
        manager = self.jobs
        assert manager is not None

        async def one(node: str) -> None:
            try:
                try:
                    jobs = await manager.list(node)
                except JournalError as exc:  # still show the jobs; say the journal is broken
                    self.post_message(OperationFailed(JOURNAL, _error(exc)))
                    jobs = await manager.list(node, journal=False)
            except Exception as exc:  # node down, journal unwritable: shown on the jobs screen
                self.post_message(JobsListFailed(node, _error(exc)))
            else:
                self.post_message(JobsListed(node, jobs))
                for problem in manager.unreported_problems(node):  # one bad record hides no other
                    self.post_message(OperationFailed(f"jobs on {node}", problem))

        try:
            await asyncio.gather(*(one(n) for n in nodes))
        finally:
            self._scanning = False

    def on_jobs_listed(self, message: JobsListed) -> None:
        for job in self.board.update_node(message.node, message.jobs, self.now()):
            self.notify(f"re-attached: {job_title(job)} is running (job {job.job_id})", timeout=6)
            self.watch_job(job)
        self.refresh_views()

    def on_jobs_list_failed(self, message: JobsListFailed) -> None:
        first = message.node not in self.board.node_errors
        self.board.fail_node(message.node, message.error)
        if first:
            self.notify(f"jobs on {message.node}: {message.error}", severity="warning", timeout=6)
        self.refresh_views()

    def after_snapshot(self, fleet: FleetSnapshot) -> None:
        """A node that comes back is scanned for jobs; switch-wal arrivals are confirmed."""
        back = []
        for node in fleet.nodes.values():
            was = self._reachable.get(node.node)
            self._reachable[node.node] = node.reachable
            if node.reachable and was is False:
                back.append(node.node)
        if back:
            self.scan_jobs(back)
        for job, arrival in self.board.check_arrivals(fleet):
            when = arrival.arrived_at.strftime("%H:%M:%S") if arrival.arrived_at else "?"
            self.notify(f"{job_title(job)}: WAL {arrival.wal} arrived on {job.node} at {when}")

    # --- cancel ---------------------------------------------------------------------------------

    def cancel_job(self, job: Job) -> None:
        if self.readonly:
            self.notify("read-only: cancel is not available", severity="warning")
            return
        if self.jobs is None:
            self.notify(NO_JOBS, severity="error")
            return
        if not job.running:
            self.notify(f"job {job.job_id} is not running ({job.state.value})", timeout=4)
            return
        word = job.server or job.node
        lines = [
            f"Stop {job_title(job)} (job {job.job_id}): SIGINT to its processes, SIGTERM "
            "if they are still there after the grace period. A cancelled backup stays as "
            "FAILED in the catalogue until it is deleted.",
            "",
            "  " + " ".join(job.argv),
        ]
        self.push_screen(
            ConfirmScreen(f"CANCEL {job_title(job)}", lines, typed=word),
            partial(self._cancel_confirmed, job),
        )

    def _cancel_confirmed(self, job: Job, yes: bool | None) -> None:
        if not yes:
            self.notify(f"{job_title(job)}: not cancelled", timeout=3)
            return
        self.run_worker(
            self._cancel(job), name=f"cancel {job.job_id}", group=OPS_GROUP, exit_on_error=False
        )

    async def _cancel(self, job: Job) -> None:
        assert self.jobs is not None
        try:
            current = await self.jobs.cancel(job)
        except Exception as exc:
            self.post_message(OperationFailed(f"cancel {job_title(job)}", _error(exc)))
            return
        self.post_message(JobsListed(job.node, [current]))
        if current.running:
            self.post_message(
                OperationFailed(f"cancel {job_title(job)}", "it is still running after SIGTERM")
            )
