"""The recovery walkthrough, steps 1-6: server and node, target, backup, destination with its
pre-flight, options, review. Every step is keyboard-only; esc goes back one step; nothing runs
before the typed confirmation at the review (steps 7, the run and the drill: recovery_run).

Each step calls the core functions `drconsole --run recover` calls (validate_target,
choose_backup_on_node, preflight, build_plan…), never a second implementation.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import (
    Button,
    Checkbox,
    Footer,
    Input,
    Label,
    OptionList,
    RadioButton,
    RadioSet,
    Static,
)
from textual.widgets.option_list import Option

from dr_console.core.barman_errors import BarmanError
from dr_console.core.preflight import backup_need_bytes, preflight
from dr_console.core.recovery import (
    RecoveryOptions,
    RecoveryPlanError,
    TargetAction,
    build_plan,
    parse_destination,
    parse_target,
    validate_target,
)
from dr_console.core.recovery_source import choose_backup_on_node, restore_host_for
from dr_console.core.transport import TransportError
from dr_console.tui.screens.recovery_state import (
    RecoveryServices,
    WizardState,
    backup_line,
    done_backups,
    parse_jobs,
    parse_restore_host,
    preflight_rows,
    restore_host_text,
    source_from_state,
    source_lines,
    target_text,
    window_text,
)

if TYPE_CHECKING:
    from dr_console.tui.app import DrConsoleApp

STEPS = 7
GROUP = "recovery-wizard"
# What a step may show instead of crashing: refusals, Barman and transport failures.
EXPECTED = (RecoveryPlanError, BarmanError, TransportError, OSError, ValueError, KeyError)
TARGET_KINDS: tuple[tuple[str, str, str], ...] = (
    ("latest", "latest: replay all archived WAL", ""),
    ("time", "time: a moment, with its time zone", "2026-11-30 17:20:00+00"),
    ("lsn", "lsn: a WAL location", "0/C000000"),
    ("xid", "xid: a transaction id", "1234"),
    ("name", "name: a named restore point", "before_upgrade"),
    ("immediate", "immediate: the end of the backup (consistent, no replay)", ""),
)
TARGET_ACTIONS: tuple[tuple[TargetAction | None, str], ...] = (
    (None, "not set: PostgreSQL PAUSES at the target"),
    ("promote", "promote: open read-write once the target is reached"),
    ("pause", "pause: stay read-only in recovery (pg_wal_replay_resume)"),
    ("shutdown", "shutdown: stop once the target is reached"),
)


def error_text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class WizardStep(Screen[None]):
    """One step: a title line, the step's body, an error line, the footer. esc goes back."""

    STEP: ClassVar[int] = 0
    TITLE_TEXT: ClassVar[str] = ""
    BINDINGS = [Binding("escape", "back", "back", id="recovery-back")]
    DEFAULT_CSS = """
    WizardStep { layout: vertical; }
    WizardStep .wizard-title { background: $primary; color: $text; text-style: bold; }
    WizardStep .wizard-error { color: $error; text-style: bold; height: auto; }
    WizardStep .wizard-note { color: $text-muted; height: auto; }
    WizardStep .wizard-body { height: 1fr; }
    WizardStep OptionList { height: auto; max-height: 12; }
    WizardStep Input { border: none; height: 1; padding: 0 1; background: $boost; }
    WizardStep Input:focus { border: none; background: $accent 30%; }
    WizardStep Checkbox, WizardStep Checkbox:focus {
        border: none; height: 1; padding: 0; background: transparent;
    }
    WizardStep RadioSet, WizardStep RadioSet:focus {
        border: none; height: auto; padding: 0; background: transparent;
    }
    WizardStep Checkbox:focus > .toggle--label { text-style: bold reverse; }
    WizardStep Horizontal { height: 1; }
    WizardStep Label.field { width: 24; }
    """

    def __init__(self, services: RecoveryServices, wiz: WizardState | None) -> None:
        super().__init__()
        self.services = services
        self._wiz = wiz

    @property
    def wiz(self) -> WizardState:
        assert self._wiz is not None
        return self._wiz

    def title_line(self) -> str:
        where = f" · {self._wiz.server} on {self._wiz.node}" if self._wiz else ""
        return f"Recovery · step {self.STEP}/{STEPS} · {self.TITLE_TEXT}{where}"

    def compose(self) -> ComposeResult:
        yield Static(self.title_line(), classes="wizard-title")
        yield from self.body()
        yield Static("", id="wizard-error", classes="wizard-error")
        yield Footer()

    def body(self) -> ComposeResult:
        yield from ()

    def show_error(self, message: str) -> None:
        self.query_one("#wizard-error", Static).update(Text(message))

    def action_back(self) -> None:
        self.app.pop_screen()

    def work(self, coro: object, name: str) -> None:
        """Run `coro` as this step's worker (one at a time; a failure shows, never crashes)."""
        self.run_worker(coro, name=name, group=GROUP, exclusive=True, exit_on_error=False)  # type: ignore[arg-type]


# --- 1. server and node -------------------------------------------------------------------------


class ServerStep(WizardStep):
    STEP = 1
    TITLE_TEXT = "server and node"

    def __init__(self, services: RecoveryServices, keys: list[str], selected: str | None) -> None:
        super().__init__(services, None)
        self.keys = keys
        self.selected = selected

    def body(self) -> ComposeResult:
        yield Static(
            "Recover from the primary site or from the passive (geo) node. "
            "↑↓ choose, enter next, esc leaves.",
            classes="wizard-note",
        )
        app = self.app
        options: list[Option] = []
        for key in self.keys:
            state = app.state.servers[key]  # type: ignore[attr-defined]
            source = source_from_state(self.services.config, state)
            options.append(Option(Text("\n".join(source_lines(source))), id=key))
        yield OptionList(*options, id="recovery-sources")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if self.selected in self.keys:
            options.highlighted = self.keys.index(self.selected)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        key = event.option.id
        state = self.app.state.servers.get(key or "")  # type: ignore[attr-defined]
        if state is None:
            self.show_error(f"{key} is not in the fleet any more")
            return
        try:
            source = source_from_state(self.services.config, state)
        except KeyError as exc:
            self.show_error(f"node {exc} is not in the configuration")
            return
        self.app.push_screen(TargetStep(self.services, WizardState(state.server, source)))


# --- 2. target ----------------------------------------------------------------------------------


class TargetStep(WizardStep):
    STEP = 2
    TITLE_TEXT = "recovery target"

    def body(self) -> ComposeResult:
        src = self.wiz.source
        yield Static(
            f"window {window_text(src.window)}\n"
            "Times are typed WITH their zone (+00 is UTC; the console never guesses it). "
            "↑↓ kind, enter: next (or type the value, then enter).",
            classes="wizard-note",
        )
        yield OptionList(
            *(Option(label, id=kind) for kind, label, _ in TARGET_KINDS), id="target-kind"
        )
        with Horizontal():
            yield Label("value", classes="field", id="target-label")
            yield Input(id="target-value", placeholder="(none for latest)")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def _kind(self) -> str:
        options = self.query_one("#target-kind", OptionList)
        index = options.highlighted or 0
        return TARGET_KINDS[index][0]

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        kind = event.option.id or "latest"
        example = next(e for k, _, e in TARGET_KINDS if k == kind)
        field = self.query_one("#target-value", Input)
        field.placeholder = f"e.g. {example}" if example else f"(none for {kind})"
        self.query_one("#target-label", Label).update(f"{kind} value" if example else "value")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        kind = event.option.id or "latest"
        if kind in ("latest", "immediate"):
            self.submit(kind)
        else:
            self.query_one("#target-value", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        kind = self._kind()
        if kind in ("latest", "immediate"):
            self.submit(f"{kind} {value}".strip())
        else:
            self.submit(value if value.startswith(f"{kind}=") else f"{kind}={value}")

    def submit(self, text: str) -> None:
        src = self.wiz.source
        try:
            target = parse_target(text)
        except RecoveryPlanError as exc:
            self.show_error(f"REFUSED: {exc}")
            return
        problems = validate_target(target, src.window, src.backups, last_wal=src.last_wal)
        if problems:
            self.show_error("REFUSED: " + "\n".join(problems))
            return
        self.show_error("")
        wiz = self.wiz
        if target != wiz.target:  # what the later steps derived from the old target is void
            wiz.target, wiz.backup, wiz.backup_why = target, None, ""
            wiz.preflight, wiz.plan = None, None
        self.app.push_screen(BackupStep(self.services, wiz))


# --- 3. backup ----------------------------------------------------------------------------------


class BackupStep(WizardStep):
    STEP = 3
    TITLE_TEXT = "backup"

    def body(self) -> ComposeResult:
        assert self.wiz.target is not None
        yield Static(
            f"target {target_text(self.wiz.target)}\nasking Barman which backup serves it…",
            id="backup-why",
            classes="wizard-note",
        )
        backups = done_backups(self.wiz.source)
        yield OptionList(
            *(Option(backup_line(b), id=b.backup_id) for b in backups), id="backup-list"
        )

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        if self.wiz.backup is None:
            self.work(self._choose(None), "choose-backup")
        else:
            self.show_automatic(self.wiz.backup_why)

    async def _choose(self, pick: str | None) -> None:
        wiz = self.wiz
        assert wiz.target is not None
        try:
            client = self.services.client(wiz.node)
            backup, why = await choose_backup_on_node(
                client, wiz.source, wiz.server, wiz.target, pick=pick
            )
        except EXPECTED as exc:
            self.show_error(f"REFUSED: {error_text(exc)}" if pick else error_text(exc))
            return
        wiz.backup, wiz.backup_why = backup, why
        self.show_error("")
        if pick is None:
            self.show_automatic(why)
            return
        self.app.push_screen(DestinationStep(self.services, wiz))

    def show_automatic(self, why: str) -> None:
        wiz = self.wiz
        assert wiz.target is not None and wiz.backup is not None
        self.query_one("#backup-why", Static).update(
            Text(
                f"target {target_text(wiz.target)}\n"
                f"chosen: {wiz.backup.backup_id}, {why}.\n"
                "enter takes the highlighted backup; another one is checked the same way."
            )
        )
        options = self.query_one(OptionList)
        index = options.get_option_index(wiz.backup.backup_id)
        options.highlighted = index

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        backup_id = event.option.id
        if backup_id is None:
            return
        wiz = self.wiz
        if wiz.backup is not None and backup_id == wiz.backup.backup_id:
            self.app.push_screen(DestinationStep(self.services, wiz))
        else:
            self.show_error(f"checking backup {backup_id} against the target…")
            self.work(self._choose(backup_id), "check-backup")


# --- 4. destination and pre-flight -------------------------------------------------------------


class DestinationStep(WizardStep):
    STEP = 4
    TITLE_TEXT = "destination and pre-flight"

    def __init__(self, services: RecoveryServices, wiz: WizardState) -> None:
        super().__init__(services, wiz)
        self.checked: str | None = None  # the destination text whose pre-flight passed

    def body(self) -> ComposeResult:
        yield Static(
            f"On the Barman node {self.wiz.node}: an absolute PATH. Elsewhere: USER@HOST:PATH "
            "(recovered over ssh from the node). enter runs the pre-flight; enter again goes on.",
            classes="wizard-note",
        )
        with Horizontal():
            yield Label("destination", classes="field")
            value = self.wiz.destination.display() if self.wiz.destination else ""
            yield Input(value, id="destination", placeholder="/var/tmp/restore or user@host:/path")
        yield Static("", id="preflight")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        if self.wiz.preflight is not None:
            self.show_report()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        report = self.wiz.preflight
        if text == self.checked and report is not None and report.ok:
            self.app.push_screen(OptionsStep(self.services, self.wiz))
            return
        try:
            dest = parse_destination(text)
        except RecoveryPlanError as exc:
            self.show_error(f"REFUSED: {exc}")
            return
        self.wiz.destination, self.wiz.preflight, self.checked = dest, None, None
        self.show_error("")
        self.query_one("#preflight", Static).update(f"pre-flight of {dest.display()}…")
        self.work(self._preflight(text), "preflight")

    async def _preflight(self, text: str) -> None:
        wiz = self.wiz
        assert wiz.destination is not None and wiz.backup is not None
        try:
            transport = self.services.dest_transport(wiz.node, wiz.destination)
            report = await preflight(
                transport,
                wiz.destination.path,
                need_bytes=backup_need_bytes(wiz.backup.size_bytes, wiz.backup.wal_size_bytes),
                timeout=self.services.command_timeout(wiz.node),
            )
        except EXPECTED as exc:
            self.query_one("#preflight", Static).update("")
            self.show_error(f"pre-flight failed: {error_text(exc)}")
            return
        wiz.preflight = report
        if report.ok:
            self.checked = text
        self.show_report()

    def show_report(self) -> None:
        report = self.wiz.preflight
        assert report is not None
        text = Text()
        for status, title, detail in preflight_rows(report):
            text.append(f"{status:<8}", style="bold" if status == "REFUSED" else "")
            text.append(f" {title}: {detail}\n")
        for warning in report.warnings:
            text.append(f"WARNING  {warning}\n")
        self.query_one("#preflight", Static).update(text)
        if report.ok:
            self.show_error("")
            self.query_one("#wizard-error", Static).update(
                Text("pre-flight passed: enter again for the options", style="bold")
            )
        else:
            self.show_error("REFUSED: fix the destination (or choose another); Next is blocked")


# --- 5. options ---------------------------------------------------------------------------------


class OptionsStep(WizardStep):
    STEP = 5
    TITLE_TEXT = "options"

    def body(self) -> ComposeResult:
        wiz = self.wiz
        assert wiz.target is not None and wiz.destination is not None
        opts = wiz.options
        latest = wiz.target.kind == "latest"
        with VerticalScroll(classes="wizard-body"):
            yield Checkbox(
                "copy the WAL into the destination (default: get-wal on demand)",
                not opts.get_wal,
                id="copy-wal",
            )
            yield Checkbox("standby mode (the restored server never promotes)", opts.standby_mode,
                           id="standby")  # fmt: skip
            yield Static(
                "target action: a 'latest' recovery promotes by itself"
                if latest
                else "target action (↑↓ then space/enter; PostgreSQL PAUSES when not set)",
                classes="wizard-note",
            )
            with RadioSet(id="target-action", disabled=latest):
                for action, label in TARGET_ACTIONS:
                    yield RadioButton(label, value=action == opts.target_action)
            with Horizontal():
                yield Label("parallel jobs", classes="field")
                yield Input(str(opts.jobs or ""), id="jobs", placeholder="(Barman's default)")
            if wiz.destination.remote:
                yield Static(
                    "restore_command host: the Barman node as THE DESTINATION reaches it "
                    "(never localhost: from the destination that is the destination itself)",
                    classes="wizard-note",
                )
                with Horizontal():
                    yield Label("restore_command host", classes="field")
                    yield Input(self._restore_default(), id="restore-host")
            yield Button("Review >", id="review")

    def _restore_default(self) -> str:
        if self.wiz.options.restore_host is not None:
            return restore_host_text(self.wiz.options.restore_host)
        try:
            return restore_host_text(restore_host_for(self.wiz.source))
        except RecoveryPlanError:
            return ""

    def on_mount(self) -> None:
        self.query_one("#copy-wal", Checkbox).focus()

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self.review()

    def on_button_pressed(self, _event: Button.Pressed) -> None:
        self.review()

    def review(self) -> None:
        wiz = self.wiz
        assert wiz.target is not None and wiz.destination is not None
        assert wiz.backup is not None
        copy_wal = self.query_one("#copy-wal", Checkbox).value
        radio = self.query_one("#target-action", RadioSet)
        index = radio.pressed_index
        action = None if radio.disabled or index < 0 else TARGET_ACTIONS[index][0]
        try:
            jobs = parse_jobs(self.query_one("#jobs", Input).value)
            restore = None
            if wiz.destination.remote and not copy_wal:
                restore = parse_restore_host(self.query_one("#restore-host", Input).value)
            wiz.options = RecoveryOptions(
                get_wal=not copy_wal,
                target_action=action,
                standby_mode=self.query_one("#standby", Checkbox).value,
                jobs=jobs,
                restore_host=restore,
            )
            wiz.plan = build_plan(
                self.services.client(wiz.node),
                node=wiz.node,
                server=wiz.server,
                backup=wiz.backup,
                backup_why=wiz.backup_why,
                target=wiz.target,
                destination=wiz.destination,
                options=wiz.options,
                capabilities=wiz.source.capabilities,
            )
        except EXPECTED as exc:
            self.show_error(f"REFUSED: {error_text(exc)}")
            return
        self.show_error("")
        self.app.push_screen(ReviewStep(self.services, wiz))


# --- 6. review ----------------------------------------------------------------------------------


class ReviewStep(WizardStep):
    STEP = 6
    TITLE_TEXT = "review"
    BINDINGS = [
        Binding("escape", "back", "back", id="recovery-back"),
        Binding("enter", "recover", "recover…", id="recovery-recover"),
        Binding("d", "drill", "drill instead…", id="recovery-drill"),
    ]

    def body(self) -> ComposeResult:
        plan = self.wiz.plan
        assert plan is not None
        text = Text()
        for line in plan.summary_lines():
            bold = line.startswith(("command", "warning"))
            text.append(line + "\n", style="bold" if bold else "")
        target = plan.target
        if target.time is not None and target.time.utcoffset():
            text.append(f"target in UTC {target_text(target)}\n")
        report = self.wiz.preflight
        if report is not None:
            text.append(
                "pre-flight   " + ", ".join(f"{s} {t}" for s, t, _ in preflight_rows(report)) + "\n"
            )
        text.append("\nenter: recover (typed confirmation) · d: a drill instead · esc: back")
        with VerticalScroll(classes="wizard-body"):
            yield Static(text, id="review")

    def action_recover(self) -> None:
        from dr_console.tui.screens.recovery_run import RunStep, TypedConfirm

        plan = self.wiz.plan
        assert plan is not None
        lines = [
            f"barman recover {plan.server} backup {plan.backup.backup_id} on node {plan.node}",
            f"into {plan.destination.display()}",
        ]
        self.app.push_screen(
            TypedConfirm("Recover?", lines, plan.server),
            partial(self._confirmed, lambda: RunStep(self.services, self.wiz)),
        )

    def action_drill(self) -> None:
        from dr_console.tui.screens.recovery_run import DrillStep, TypedConfirm

        wiz = self.wiz
        assert wiz.target is not None
        lines = [
            f"DRILL: recover {wiz.server} to {wiz.target.describe()} into a scratch directory on "
            f"{wiz.node} (not {wiz.destination.display() if wiz.destination else '-'}),",
            "start it on a spare port, verify, stop and remove it; report the RTO",
        ]
        self.app.push_screen(
            TypedConfirm("Drill?", lines, wiz.server),
            partial(self._confirmed, lambda: DrillStep(self.services, self.wiz)),
        )

    def _confirmed(self, make: object, yes: bool | None) -> None:
        if not yes:
            self.notify("cancelled: nothing was run", timeout=3)
            return
        self.app.push_screen(make())  # type: ignore[operator]


# --- entry --------------------------------------------------------------------------------------


def open_recovery(app: DrConsoleApp, server_key: str | None) -> None:
    """Open the walkthrough on `server_key` ("node/server"; None: choose among all servers).

    Refused in read-only mode and without a job manager; the refusal is a notification."""
    if app.readonly:
        app.notify("read-only: recovery is not available", severity="warning")
        return
    jobs = getattr(app, "jobs", None)
    if jobs is None:
        app.notify(
            "recovery is not available: this console has no job manager (no node connections)",
            severity="error",
        )
        return
    servers = app.state.servers
    if not servers:
        app.notify("no server known yet: wait for the first poll", severity="warning")
        return
    keys = sorted(servers)
    if server_key is not None and server_key in servers:
        name = servers[server_key].server
        keys = [k for k in keys if servers[k].server == name]
    app.push_screen(ServerStep(RecoveryServices(app.config, jobs), keys, server_key))
