"""Modal: confirm an operation. y/n for ordinary ones; destructive ones need a typed word."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class ConfirmScreen(ModalScreen[bool]):
    """Dismissed with True only on an explicit yes (or the exact typed word)."""

    BINDINGS = [
        Binding("escape", "answer(False)", "cancel", id="confirm-cancel"),
        Binding("n", "answer(False)", "no", id="confirm-no", show=False),
        Binding("y", "answer(True)", "yes", id="confirm-yes", show=False),
    ]

    def __init__(self, title: str, lines: list[str], *, typed: str | None = None) -> None:
        super().__init__(id="confirm")
        self.title_text = title
        self.lines = lines
        self.typed = typed
        self.refusals = 0  # wrong words typed so far

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-body") as body:
            body.border_title = self.title_text
            body.border_subtitle = "esc cancels"
            yield Static(Text("\n".join(self.lines)), id="confirm-text")
            if self.typed is None:
                ask = Text("y: go ahead    n or esc: cancel", style="bold")
                yield Static(ask, id="confirm-ask")
            else:
                yield Static(
                    Text(f"Type {self.typed} and press enter to confirm:", style="bold"),
                    id="confirm-ask",
                )
                yield Input(placeholder=self.typed, id="confirm-input")
                yield Static(id="confirm-error")

    def on_mount(self) -> None:
        if self.typed is not None:
            self.query_one("#confirm-input", Input).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # With a typed word, y/n are letters of the word, not answers.
        return not (action == "answer" and self.typed is not None and parameters != (False,))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value == self.typed:
            self.dismiss(True)
            return
        self.refusals += 1
        self.query_one("#confirm-error", Static).update(
            Text(f"{event.value!r} is not {self.typed!r}: nothing done. Try again or esc.")
        )
        event.input.value = ""

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
