"""A titled pane that stamps its age (or STALE and why) in its bottom border."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.containers import Vertical

from dr_console.tui.state import ConsoleState, P, PaneState, ServerState, stamp

KEY_WIDTH = 14


def kv(rows: list[tuple[str, str]]) -> Text:
    """Aligned "key  value" lines; plain Text, so names from the fleet are never read as markup."""
    text = Text()
    for index, (key, value) in enumerate(rows):
        if index:
            text.append("\n")
        text.append(key.ljust(KEY_WIDTH), style="bold")
        text.append(value)
    return text


class Pane(Vertical):
    TITLE = ""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")
        self.border_title = self.TITLE

    def set_stamp(
        self, console: ConsoleState, state: ServerState, pane: PaneState[P], now: datetime
    ) -> None:
        reason = console.stale_reason(state, pane)
        self.border_subtitle = stamp(pane, reason, now)
        self.set_class(reason is not None, "-stale")

    def show(self, console: ConsoleState, state: ServerState, now: datetime) -> None:
        raise NotImplementedError
