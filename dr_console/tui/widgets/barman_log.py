"""The node's barman.log filtered to the job's server, followed from its last 200 lines."""

from __future__ import annotations

from textual.widgets import Log
from textual.worker import Worker

from dr_console.core.barman import BarmanClient
from dr_console.core.barman_log import barman_log_path, follow_argv
from dr_console.core.transport import Transport

FLUSH_INTERVAL = 0.1
MAX_LINES = 2_000


class BarmanLog(Log):
    DEFAULT_CSS = "BarmanLog { height: 8; border-top: solid $primary; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(max_lines=MAX_LINES, auto_scroll=True, id=id)
        self._pending: list[str] = []
        self.path: str | None = None
        self.error: str | None = None
        self._worker: Worker[None] | None = None

    def on_mount(self) -> None:
        self.set_interval(FLUSH_INTERVAL, self._flush)

    @property
    def following(self) -> bool:
        return self._worker is not None

    def follow(self, transport: Transport, client: BarmanClient, server: str) -> None:
        if self._worker is None:
            self._worker = self.run_worker(
                self._follow(transport, client, server),
                group="barman-log",
                exclusive=True,
                exit_on_error=False,
            )

    async def _follow(self, transport: Transport, client: BarmanClient, server: str) -> None:
        try:
            self._pending.append(f"-- looking up the barman.log of {transport.name} (diagnose)…")
            self.path = await barman_log_path(client)
            self._pending.append(f"-- {self.path}, lines naming {server}:")
            async with transport.stream(follow_argv(self.path, server)) as lines:
                async for line in lines:
                    self._pending.append(line)
        except Exception as exc:  # no log, node down, diagnose failed: say it in the pane
            self.error = str(exc) or type(exc).__name__
            self._pending.append(f"-- barman.log not available: {self.error}")

    def _flush(self) -> None:
        if self._pending:
            lines, self._pending = self._pending, []
            self.write_lines(lines)
