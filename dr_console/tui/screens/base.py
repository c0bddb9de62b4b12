"""What the app needs from its screens: redraw from the console state."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.screen import Screen

if TYPE_CHECKING:
    from dr_console.tui.app import DrConsoleApp


class ConsoleScreen(Screen[None]):
    SCOPE: ClassVar[str] = ""  # the keymap scope of this screen's bindings

    @property
    def console(self) -> DrConsoleApp:
        from dr_console.tui.app import DrConsoleApp

        app = self.app
        assert isinstance(app, DrConsoleApp)
        return app

    ready = False  # set by on_mount: the app redraws only screens whose widgets exist

    def on_unmount(self) -> None:
        self.ready = False

    def refresh_view(self) -> None:
        """Redraw from the app's state (after a poll, and every second for the ages)."""
