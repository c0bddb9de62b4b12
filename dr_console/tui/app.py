"""The drconsole App: registers themes and keymap, owns the state, handles the workers' messages."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from rich.text import Text
from textual.app import App
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.timer import Timer

from dr_console.config import Config
from dr_console.core import fmt
from dr_console.core.jobs import JobManager
from dr_console.models import BackupDetail, FleetSnapshot, Health
from dr_console.tui import keymap
from dr_console.tui.commands import ActionsProvider
from dr_console.tui.jobs_board import JobsBoard
from dr_console.tui.messages import (
    BackupDetailFailed,
    BackupDetailReady,
    CollectFailed,
    PollFinished,
    SnapshotReady,
)
from dr_console.tui.operations import OperationsMixin
from dr_console.tui.screens.backup_detail import BackupDetailScreen
from dr_console.tui.screens.base import ConsoleScreen
from dr_console.tui.screens.fleet import FleetScreen
from dr_console.tui.screens.help import HelpScreen
from dr_console.tui.screens.jobs import JobsScreen
from dr_console.tui.screens.server import ServerScreen
from dr_console.tui.state import ConsoleState
from dr_console.tui.themes import DEFAULT_THEME, ThemeSet, load_themes

INTERVAL_STEPS = (1.0, 2.0, 3.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0)
MIN_INTERVAL, MAX_INTERVAL = INTERVAL_STEPS[0], INTERVAL_STEPS[-1]
POLL_GROUP = "poll"


class FleetSource(Protocol):
    """What the app needs from core.collector.Collector (tests replay recorded fleets)."""

    @property
    def cycle_timeout(self) -> float:
        """How long one collect() may take before the app gives up on it."""
        ...

    async def collect(self, *, force_slow: bool = False) -> FleetSnapshot: ...

    async def show_backup(self, node: str, server: str, backup_id: str) -> BackupDetail: ...

    async def close(self) -> None: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


def _error_text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class DrConsoleApp(OperationsMixin):
    CSS_PATH = "app.tcss"
    TITLE = "drconsole"
    BINDINGS = keymap.bindings("app")
    COMMANDS = App.COMMANDS | {ActionsProvider}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]

    def __init__(
        self,
        config: Config,
        collector: FleetSource,
        *,
        now: Callable[[], datetime] = utcnow,
        readonly: bool = False,
        theme: str = DEFAULT_THEME,
        themes: ThemeSet | None = None,
        jobs: JobManager | None = None,
    ) -> None:
        super().__init__()
        if "TEXTUAL_ANIMATIONS" not in os.environ:
            # Over ssh every animation frame is a screen update on the wire; a key should move
            # the view at once (a scroll lands in one frame, not after a glide).
            self.animation_level = "none"
        self.config = config
        self.collector = collector
        self.now = now
        self.readonly = readonly
        self.jobs = jobs  # None: no operations (and no jobs screen content)
        self.board = JobsBoard()
        self._scanning = False
        self._reachable: dict[str, bool] = {}
        self.state = ConsoleState()
        self.paused = False
        self.interval = min(max(config.console.refresh_interval, MIN_INTERVAL), MAX_INTERVAL)
        # the slowest node's own limits decide (a node's command_timeout overrides the console's)
        self.poll_timeout = collector.cycle_timeout
        self.polls = 0
        self._polling = False
        self._pending: bool | None = None  # a poll asked for while one runs (value: force_slow)
        self._timer: Timer | None = None
        self._keymap_overrides: dict[str, str] = {}
        theme_set = load_themes() if themes is None else themes
        self.theme_names = theme_set.names
        self.theme_errors = theme_set.errors
        for item in theme_set.themes:
            self.register_theme(item)
        self._wanted_theme = theme

    # --- start-up ---------------------------------------------------------------------------

    def get_default_screen(self) -> Screen[None]:
        return FleetScreen()

    def on_mount(self) -> None:
        self.use_theme(self._wanted_theme, quiet=True)
        if self.theme_errors:
            self.notify(
                "Skipped invalid theme file(s):\n" + "\n".join(self.theme_errors),
                title="themes",
                severity="warning",
                timeout=15,
            )
        self.set_interval(1.0, self.refresh_views)
        self.request_poll(force_slow=True)
        self.scan_jobs()  # re-attach: jobs still running on the nodes are followed again

    def set_keymap_overrides(self, overrides: dict[str, str]) -> list[str]:
        self._keymap_overrides = dict(overrides)
        return keymap.apply_keymap(self, overrides)

    # --- polling ----------------------------------------------------------------------------

    def request_poll(self, *, force_slow: bool = False) -> None:
        if self._polling:
            self._pending = bool(self._pending) or force_slow
            return
        self._polling = True
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.run_worker(
            self._poll(force_slow),
            name="collect",
            group=POLL_GROUP,
            exclusive=True,
            exit_on_error=False,
        )

    async def _poll(self, force_slow: bool) -> None:
        try:
            fleet = await asyncio.wait_for(
                self.collector.collect(force_slow=force_slow), self.poll_timeout
            )
        except TimeoutError:
            self.post_message(CollectFailed(f"poll timed out after {self.poll_timeout:.0f}s"))
        except Exception as exc:  # a collector bug must show in the UI, not kill the console
            self.post_message(CollectFailed(f"poll failed: {_error_text(exc)}"))
        else:
            self.post_message(SnapshotReady(fleet))
        finally:
            self.post_message(PollFinished())

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        self.polls += 1
        self.state.apply(message.fleet)
        self._evaluate(message.fleet)
        self.after_snapshot(message.fleet)
        self.refresh_views()

    def _evaluate(self, fleet: FleetSnapshot) -> None:
        from dr_console.core.checks import evaluate_server, worst

        for node in fleet.nodes.values():
            for snap in node.servers.values():
                state = self.state.servers.get(f"{snap.node}/{snap.server}")
                if state is None:
                    continue
                try:
                    results = evaluate_server(snap, fleet, self.config)
                except Exception as exc:  # a checks bug: say so on the row, keep running
                    state.health, state.health_detail = Health.UNKNOWN, f"checks failed: {exc}"
                    continue
                state.health = worst(results)
                state.health_detail = "; ".join(
                    f"{r.status.label} {r.check}: {r.detail}"
                    for r in results
                    if r.status is not Health.OK
                )

    def on_collect_failed(self, message: CollectFailed) -> None:
        self.polls += 1
        self.state.fail(message.error, self.now())
        self.refresh_views()

    def on_poll_finished(self, _message: PollFinished) -> None:
        self._polling = False
        if self._pending is not None:
            force, self._pending = self._pending, None
            self.request_poll(force_slow=force)
            return
        self._arm_timer()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if not self.paused:
            self._timer = self.set_timer(self.interval, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self.screen_stack:  # the app is closing: self.screen would raise
            return
        if isinstance(self.screen, ModalScreen):
            self._arm_timer()  # a dialog is open: do not move the ground under the user
            return
        self.request_poll()

    # --- views ------------------------------------------------------------------------------

    def refresh_views(self) -> None:
        """Redraw the screens the user can see: the top one and those under its dialogs. A
        covered screen redraws when it is shown again (ConsoleScreen.on_screen_resume)."""
        for screen in visible_screens(self.screen_stack):
            if isinstance(screen, ConsoleScreen) and screen.ready and screen.is_attached:
                try:
                    screen.refresh_view()
                except NoMatches:  # the screen is being torn down (app exit): nothing to draw
                    screen.ready = False

    def status_line(self) -> Text:
        state = self.state
        now = self.now()
        text = Text()
        count = len(state.servers)
        nodes = len({s.node for s in state.servers.values()} | set(state.dark_nodes))
        text.append(f"{count} servers on {nodes} nodes", style="bold")
        down = sorted(n.node for n in state.fleet.nodes.values() if not n.reachable) \
            if state.fleet else []
        if down:
            text.append(f"  unreachable: {', '.join(down)}", style="bold reverse")
        if state.last_poll_at is None:
            text.append("  waiting for the first poll")
        else:
            text.append(f"  polled {fmt.duration(fmt.age_seconds(state.last_poll_at, now))} ago")
        text.append(f"  every {fmt.duration(self.interval)} (+/-)")
        if self.paused:
            text.append("  PAUSED", style="bold reverse")
        if self.readonly:
            text.append("  READ-ONLY", style="bold")
        if state.poll_error:
            text.append(f"\nSTALE: {state.poll_error}", style="bold")
        return text

    def open_server(self, key: str) -> None:
        if key in self.state.servers:
            self.push_screen(ServerScreen(key))
        else:
            self.notify(self.state.why_no_server(key), severity="error")

    def open_backup(self, key: str, backup_id: str) -> None:
        state = self.state.servers.get(key)
        if state is None:
            return
        self.push_screen(BackupDetailScreen(key, backup_id))
        self.run_worker(
            self._load_backup(state.node, state.server, backup_id),
            name="show-backup",
            group="show-backup",
            exclusive=True,
            exit_on_error=False,
        )

    async def _load_backup(self, node: str, server: str, backup_id: str) -> None:
        try:
            detail = await asyncio.wait_for(
                self.collector.show_backup(node, server, backup_id), self.poll_timeout
            )
        except TimeoutError:
            self.post_message(BackupDetailFailed(backup_id, "timed out"))
        except Exception as exc:  # shown in the dialog; the console keeps running
            self.post_message(BackupDetailFailed(backup_id, _error_text(exc)))
        else:
            self.post_message(BackupDetailReady(detail))

    def _detail_screen(self, backup_id: str) -> BackupDetailScreen | None:
        if not self.screen_stack:  # the app is closing
            return None
        screen = self.screen
        if isinstance(screen, BackupDetailScreen) and screen.backup_id == backup_id:
            return screen
        return None

    def on_backup_detail_ready(self, message: BackupDetailReady) -> None:
        screen = self._detail_screen(message.detail.backup.backup_id)
        if screen is not None:
            screen.show_detail(message.detail)

    def on_backup_detail_failed(self, message: BackupDetailFailed) -> None:
        screen = self._detail_screen(message.backup_id)
        if screen is not None:
            screen.show_error(message.error)

    # --- actions ----------------------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self._keymap_overrides, readonly=self.readonly))

    def action_jobs(self) -> None:
        if not isinstance(self.screen, JobsScreen):
            self.push_screen(JobsScreen())

    def action_refresh(self) -> None:
        self.notify("refreshing (slow facts too)…", timeout=2)
        self.request_poll(force_slow=True)

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if self.paused:
            if self._timer is not None:
                self._timer.stop()
                self._timer = None
            self.notify("polling paused (space resumes)", timeout=3)
        else:
            self.notify("polling resumed", timeout=2)
            if not self._polling:
                self.request_poll()
        self.refresh_views()

    def action_change_interval(self, direction: int) -> None:
        steps = INTERVAL_STEPS
        if direction > 0:
            bigger = [s for s in steps if s > self.interval]
            self.interval = bigger[0] if bigger else MAX_INTERVAL
        else:
            smaller = [s for s in steps if s < self.interval]
            self.interval = smaller[-1] if smaller else MIN_INTERVAL
        self.notify(f"refresh every {fmt.duration(self.interval)}", timeout=2)
        if not self._polling:
            self._arm_timer()
        self.refresh_views()

    def action_cycle_theme(self) -> None:
        names = self.theme_names or [self.theme]
        index = names.index(self.theme) if self.theme in names else -1
        self.use_theme(names[(index + 1) % len(names)])

    def use_theme(self, name: str, *, quiet: bool = False) -> None:
        if name not in self.available_themes:
            fallback = DEFAULT_THEME if DEFAULT_THEME in self.available_themes else "textual-dark"
            self.notify(
                f"unknown theme {name!r}; using {fallback}. Themes: {', '.join(self.theme_names)}",
                severity="warning",
            )
            name = fallback
        self.theme = name
        self.refresh_views()
        if not quiet:
            self.notify(f"theme {name}", timeout=2)

    async def action_quit(self) -> None:
        self.exit(0)

    async def on_unmount(self) -> None:
        # closing connections on the way out must not print a traceback
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.collector.close(), 10)


def visible_screens(stack: list[Screen[object]]) -> list[Screen[object]]:
    """The top screen, and below it every screen down to the first that is not a dialog."""
    shown: list[Screen[object]] = []
    for screen in reversed(stack):
        shown.append(screen)
        if not isinstance(screen, ModalScreen):
            break
    return shown
