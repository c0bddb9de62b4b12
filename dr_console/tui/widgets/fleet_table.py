"""The fleet table: one keyed row per server per node, updated by diff so the cursor stays put."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from dr_console.models import Health
from dr_console.tui.rows import COLUMNS, FleetRow, SortValue
from dr_console.tui.state import row_key


class FleetTable(DataTable[Text]):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._shown: dict[str, dict[str, Text]] = {}
        self._sort_values: dict[str, dict[str, SortValue]] = {}

    def on_mount(self) -> None:
        for key, title in COLUMNS:
            self.add_column(title, key=key)

    @property
    def cursor_key(self) -> str | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return key

    def _health_text(self, row: FleetRow) -> Text:
        theme = self.app.current_theme
        colour = {
            Health.OK: theme.success,
            Health.WARNING: theme.warning,
            Health.CRITICAL: theme.error,
        }.get(row.health)
        style = f"bold {colour}" if colour else "bold"
        return Text(row.cells["health"], style=style)

    def _cells(self, row: FleetRow) -> dict[str, Text]:
        cells = {key: Text(row.cells[key]) for key, _ in COLUMNS}
        cells["health"] = self._health_text(row)
        if row.stale:
            for key in cells:
                if key != "health":
                    cells[key].stylize("dim")
        return cells

    def show_rows(self, rows: list[FleetRow], needle: str, sort_column: str | None) -> None:
        """Bring the table to `rows` filtered by `needle`, touching only what changed."""
        keep = self.cursor_key
        wanted = {row.key: row for row in rows if row.matches(needle)}
        for key in list(self._shown):
            if key not in wanted:
                self.remove_row(key)
                del self._shown[key]
                del self._sort_values[key]
        for key, row in wanted.items():
            cells = self._cells(row)
            self._sort_values[key] = row.sort
            old = self._shown.get(key)
            if old is None:
                self.add_row(*cells.values(), key=key)
            else:
                for column, text in cells.items():
                    if not _same(old[column], text):
                        self.update_cell(key, column, text)
            self._shown[key] = cells
        if sort_column is not None:
            self.sort(
                "node",
                "server",
                key=lambda names: self._sort_values[row_key(str(names[0]), str(names[1]))][
                    sort_column
                ],
            )
        if keep is not None and keep in self._shown:
            index = self.get_row_index(keep)
            if index != self.cursor_row:
                self.move_cursor(row=index, animate=False)


def _same(a: Text, b: Text) -> bool:
    return a.plain == b.plain and str(a.style) == str(b.style) and a.spans == b.spans
