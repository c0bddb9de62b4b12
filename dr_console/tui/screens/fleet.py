"""The fleet view: every server on every node, both sites, one row each."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import DataTable, Footer, Input, Static

from dr_console.tui import keymap
from dr_console.tui.rows import COLUMNS, fleet_rows
from dr_console.tui.screens.base import ConsoleScreen
from dr_console.tui.state import row_key
from dr_console.tui.widgets.fleet_table import FleetTable

SORT_CYCLE: tuple[str | None, ...] = (None, *(key for key, _ in COLUMNS))
TITLES = dict(COLUMNS)


class FleetScreen(ConsoleScreen):
    SCOPE = "fleet"
    BINDINGS = keymap.bindings("fleet")

    def __init__(self) -> None:
        super().__init__(id="fleet")
        self.needle = ""
        self.sort_column: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="status-line")
        yield Input(placeholder="filter: any text in a row (esc clears)", id="filter")
        yield FleetTable(id="fleet-table")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.query_one(FleetTable).focus()
        self.ready = True
        self.refresh_view()

    def refresh_view(self) -> None:
        app = self.console
        self.query_one("#status-line", Static).update(app.status_line())
        table = self.query_one(FleetTable)
        table.show_rows(fleet_rows(app.state, app.now()), self.needle, self.sort_column)

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.needle = event.value
        self.refresh_view()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(FleetTable).focus()

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if box.value:
            box.value = ""  # Input.Changed refreshes the rows
            self.needle = ""
            self.refresh_view()
        box.display = False
        self.query_one(FleetTable).focus()

    def action_cycle_sort(self) -> None:
        index = SORT_CYCLE.index(self.sort_column)
        self.sort_column = SORT_CYCLE[(index + 1) % len(SORT_CYCLE)]
        if self.sort_column is None:
            table = self.query_one(FleetTable)
            order = [row.key for row in fleet_rows(self.console.state, self.console.now())]
            table.sort("node", "server", key=lambda v: order.index(row_key(str(v[0]), str(v[1]))))
        self.refresh_view()
        label = TITLES[self.sort_column] if self.sort_column else "poll order"
        self.notify(f"sorted by {label}", timeout=2)

    def action_recover(self) -> None:
        from dr_console.tui.screens.recovery import open_recovery

        open_recovery(self.console, self.query_one(FleetTable).cursor_key)

    def action_open(self) -> None:
        key = self.query_one(FleetTable).cursor_key
        if key is not None:
            self.console.open_server(key)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.console.open_server(event.row_key.value)
