"""What the app needs from its screens: redraw from the console state; read-only gating."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.screen import Screen

from dr_console.tui import keymap

if TYPE_CHECKING:
    from dr_console.tui.app import DrConsoleApp

_OPERATIONS = keymap.operation_actions()


class ConsoleScreen(Screen[None]):
    SCOPE: ClassVar[str] = ""  # the keymap scope of this screen's bindings
    SCOPES: ClassVar[tuple[str, ...]] = ()  # more scopes offered here (palette), e.g. operations

    @property
    def console(self) -> DrConsoleApp:
        from dr_console.tui.app import DrConsoleApp

        app = self.app
        assert isinstance(app, DrConsoleApp)
        return app

    ready = False  # set by on_mount: the app redraws only screens whose widgets exist

    def on_unmount(self) -> None:
        self.ready = False

    def on_screen_resume(self) -> None:
        # Covered screens are not redrawn (DrConsoleApp.refresh_views): catch up when shown.
        if self.ready:
            self.refresh_view()

    def refresh_view(self) -> None:
        """Redraw from the app's state (after a poll, and every second for the ages)."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Read-only: operations vanish (footer, keys) and their keys reach the refusal twin.
        readonly = self.console.readonly
        if action in _OPERATIONS:
            return not readonly
        if action == keymap.READONLY_ACTION:
            return readonly
        return True

    def action_readonly_refused(self, what: str) -> None:
        self.notify(
            f"read-only: {what} is not available (the console runs with --readonly)",
            severity="warning",
            timeout=4,
        )
