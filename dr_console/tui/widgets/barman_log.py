"""The node's barman.log filtered to the job's server, followed from its last 200 lines."""

from __future__ import annotations

from textual.worker import Worker

from dr_console.core.barman import BarmanClient
from dr_console.core.barman_log import barman_log_path, follow_argv
from dr_console.core.transport import Transport
from dr_console.tui.widgets.buffered_log import BufferedLog

MAX_LINES = 2_000


class BarmanLog(BufferedLog):
    DEFAULT_CSS = "BarmanLog { height: 8; border-top: solid $primary; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(max_lines=MAX_LINES, id=id)
        self.path: str | None = None
        self.error: str | None = None
        self._worker: Worker[None] | None = None

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
            self.add(f"-- looking up the barman.log of {transport.name} (diagnose)…")
            self.path = await barman_log_path(client)
            self.add(f"-- {self.path}, lines naming {server}:")
            async with transport.stream(follow_argv(self.path, server)) as lines:
                async for line in lines:
                    self.add(line)
        except Exception as exc:  # no log, node down, diagnose failed: say it in the pane
            self.error = str(exc) or type(exc).__name__
            self.add(f"-- barman.log not available: {self.error}")
