"""`?`: every key binding from the registry, with the key currently bound (keymap included)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from dr_console.tui.keymap import REGISTRY

SCOPE_TITLES = {
    "app": "everywhere",
    "fleet": "fleet view",
    "server": "server view",
    "operations": "server view: operations",
    "jobs": "jobs screen",
}


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "close", id="help-close")]

    def __init__(self, keymap: dict[str, str], *, readonly: bool = False) -> None:
        super().__init__(id="help")
        self.keymap = keymap
        self.readonly = readonly

    def compose(self) -> ComposeResult:
        with Vertical(id="help-body") as body:
            body.border_title = "drconsole keys"
            body.border_subtitle = "esc, q or ? closes"
            yield DataTable[Text](id="help-table", cursor_type="row", zebra_stripes=True)
            hint = "Every action is also in the command palette (ctrl+p or :)."
            if self.readonly:
                hint += " READ-ONLY: operations are removed."
            yield Static(hint, id="help-hint")

    def on_mount(self) -> None:
        table = self.query_one("#help-table", DataTable)
        table.add_columns("where", "key", "does")
        for spec in REGISTRY:
            if spec.operation and self.readonly:
                continue
            keys = self.keymap.get(spec.id) or spec.key_display or spec.keys
            table.add_row(Text(SCOPE_TITLES[spec.scope]), Text(keys), Text(spec.help), key=spec.id)
        table.focus()

    def action_close(self) -> None:
        self.dismiss()
