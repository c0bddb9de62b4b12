"""The walkthrough's last step: the typed confirmation, then the recovery (or the drill) as a job
with its live log, then the post-recovery checklist read from the restored files (or the drill's
RTO). Same core calls as `drconsole --run recover` / `--run drill`."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from dr_console.core.drill import DrillError, DrillResult, run_drill
from dr_console.core.jobs import JobError
from dr_console.core.journal import JournalError
from dr_console.core.preflight import (
    PreflightRefused,
    backup_need_bytes,
    claim_destination,
    preflight,
    release_destination,
)
from dr_console.core.recovery import ChecklistItem, post_recovery_checklist
from dr_console.core.recovery_run import RecoverFailed, run_recover
from dr_console.core.restored import RestoredError, read_restored_conf
from dr_console.headless_recovery import DEFAULT_DRILL_TIMEOUT, DEFAULT_RECOVER_TIMEOUT
from dr_console.models import Health
from dr_console.tui.screens.recovery import EXPECTED, WizardStep, error_text
from dr_console.tui.widgets.buffered_log import BufferedLog
from dr_console.tui.widgets.job_log import JobLog

FAILURES = (
    *EXPECTED, RecoverFailed, RestoredError, DrillError, JobError, JournalError, PreflightRefused,
    TimeoutError,
)  # fmt: skip


class TypedConfirm(ModalScreen[bool]):
    """Type `word` (the server name) and enter to go; anything else is refused; esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "cancel", id="recovery-confirm-cancel")]
    DEFAULT_CSS = """
    TypedConfirm { align: center middle; }
    TypedConfirm > Vertical {
        width: 76; height: auto; border: thick $warning; background: $surface; padding: 0 1;
    }
    TypedConfirm Input { margin: 1 0 0 0; }
    TypedConfirm #confirm-error { color: $error; text-style: bold; height: auto; }
    """

    def __init__(self, title: str, lines: list[str], word: str) -> None:
        super().__init__()
        self.title_text = title
        self.lines = lines
        self.word = word

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.title_text, style="bold"))
            yield Static(Text("\n".join(self.lines)))
            yield Static(Text(f"type {self.word} and enter to go on; esc cancels"))
            yield Input(id="confirm-input", placeholder=self.word)
            yield Static("", id="confirm-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value == self.word:
            self.dismiss(True)
            return
        self.query_one("#confirm-error", Static).update(
            Text(f"REFUSED: {event.value!r} is not {self.word!r}; nothing was run")
        )
        event.input.value = ""

    def action_cancel(self) -> None:
        self.dismiss(False)


class RunLog(JobLog):
    """The JobLog fed by the recovery's own line callback (the job id is known only once the
    core has started it), with the same batched, bounded writes."""

    def push(self, line: str) -> None:
        self.add(line)
        self.received += 1


def checklist_text(items: list[ChecklistItem]) -> Text:
    text = Text()
    for item in items:
        style = "" if item.status is Health.OK else "bold"
        text.append(f"{item.status.label:<8}", style=style)
        text.append(f" {item.title}: {item.detail}\n")
    return text


class _Running(WizardStep):
    """While the job runs, esc is refused (the operator must see its end); then esc closes the
    whole walkthrough."""

    STEP = 7
    BINDINGS = [Binding("escape", "back", "close", id="recovery-back")]
    DEFAULT_CSS = """
    _Running #run-status { height: auto; }
    _Running RunLog { height: 1fr; min-height: 4; border: round $primary; }
    _Running #run-result-box { height: 1fr; }
    _Running #run-result { height: auto; }
    """

    def __init__(self, *args: object, start: bool = True) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.start = start
        self.running = False

    def body(self) -> ComposeResult:
        yield Static("", id="run-status")
        yield RunLog(id="run-log")
        with VerticalScroll(id="run-result-box"):
            yield Static("", id="run-result")

    def status(self, text: str | Text) -> None:
        self.query_one("#run-status", Static).update(text)

    def on_buffered_log_held(self, event: BufferedLog.Held) -> None:
        event.log.border_subtitle = event.log.held_text()

    def action_back(self) -> None:
        if self.running:
            self.notify(
                "the recovery is running: wait for its end (it goes on on the node regardless)",
                severity="warning",
            )
            return
        while isinstance(self.app.screen, WizardStep):
            self.app.pop_screen()


class RunStep(_Running):
    TITLE_TEXT = "recover"

    def on_mount(self) -> None:
        plan = self.wiz.plan
        assert plan is not None
        self.status(Text(f"$ {plan.command_line}"))
        if self.start:
            self.running = True
            self.work(self._run(), "recover")

    async def _run(self) -> None:
        wiz, plan, services = self.wiz, self.wiz.plan, self.services
        assert plan is not None
        log = self.query_one(RunLog)
        try:
            services.jobs.journal.check_writable()
            dest = plan.destination
            dest_transport = services.dest_transport(plan.node, dest)
            timeout = services.command_timeout(plan.node)
            report = await preflight(
                dest_transport,
                dest.path,
                need_bytes=backup_need_bytes(plan.backup.size_bytes, plan.backup.wal_size_bytes),
                timeout=timeout,
            )
            report.raise_if_refused()  # the destination may have changed since step 4
            await claim_destination(dest_transport, dest.path, timeout)
            try:
                run = await run_recover(
                    services.jobs, plan, timeout=DEFAULT_RECOVER_TIMEOUT, on_line=log.push
                )
            finally:
                await release_destination(dest_transport, dest.path, timeout)
            self.status(f"recovered in {run.seconds:.1f} s (job {run.job.job_id}); checking the "
                        "restored configuration…")  # fmt: skip
            conf = await read_restored_conf(dest_transport, dest.path, timeout)
            items = post_recovery_checklist(
                conf, remote=dest.remote, notes=run.checklist_notes
            )
        except FAILURES as exc:
            self.status(Text(f"FAILED: {error_text(exc)}", style="bold"))
            self.running = False
            return
        self.running = False
        self.status(
            Text(f"DONE: {wiz.server} recovered into {dest.display()} in {run.seconds:.1f} s "
                 f"(job {run.job.job_id}) · esc closes", style="bold")
        )  # fmt: skip
        self.show_checklist(items)

    def show_checklist(self, items: list[ChecklistItem]) -> None:
        text = Text("post-recovery checklist (read from the restored files)\n", style="bold")
        text.append_text(checklist_text(items))
        self.query_one("#run-result", Static).update(text)


class DrillStep(_Running):
    TITLE_TEXT = "drill"

    def on_mount(self) -> None:
        assert self.wiz.target is not None
        self.status(f"drill of {self.wiz.server} to {self.wiz.target.describe()} on "
                    f"{self.wiz.node}: recover, start, replay, verify, remove…")  # fmt: skip
        if self.start:
            self.running = True
            self.work(self._run(), "drill")

    async def _run(self) -> None:
        wiz, services = self.wiz, self.services
        assert wiz.target is not None
        log = self.query_one(RunLog)
        action = wiz.options.target_action
        extra = services.config.server(wiz.server)
        try:
            services.jobs.journal.check_writable()
            result = await run_drill(
                source=wiz.source,
                server=wiz.server,
                transport=services.transport(wiz.node),
                client=services.client(wiz.node),
                jobs=services.jobs,
                target=wiz.target,
                target_action=action,
                verify_sql=extra.verify_sql if extra else None,
                timeout=DEFAULT_DRILL_TIMEOUT,
                command_timeout=services.command_timeout(wiz.node),
                journal_dir=services.config.console.journal_dir,
                log=log.push,
            )
        except FAILURES as exc:
            self.status(Text(f"FAILED: {error_text(exc)}", style="bold"))
            self.running = False
            return
        self.running = False
        self.show_result(result)

    def show_result(self, result: DrillResult) -> None:
        verdict = "DONE" if result.verified else "FAILED (verification)"
        self.status(Text(f"{verdict}: drill RTO {result.rto_seconds:.1f} s · esc closes",
                         style="bold"))  # fmt: skip
        text = Text("".join(f"{line}\n" for line in result.report_lines(width=16)))
        self.query_one("#run-result", Static).update(text)
