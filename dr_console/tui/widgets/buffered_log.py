"""A Log written in batches by a timer, that holds still while its reader scrolls back."""

from __future__ import annotations

import time
from collections import deque

from textual.message import Message
from textual.widgets import Log

FLUSH_INTERVAL = 0.1  # seconds between two write_lines() calls while lines are arriving
HELD_NOTICE_INTERVAL = 1.0  # how often a growing count of held lines is announced


class BufferedLog(Log):
    """Producers `add()` lines to a buffer that a timer flushes in one write_lines() per tick, so a
    fast producer costs one refresh per tick, not one per line.

    While the view is scrolled away from the end, the buffer is held instead of written, as `less`
    stops following when you scroll: the lines being read neither move nor get pruned under the
    reader, and the frames stay cheap. At most max_lines wait (the oldest go first). Back at the
    end (End key), the held lines are written and following resumes. `Held` messages say when
    holding starts, grows and ends, for the screen to show `held_text()`."""

    class Held(Message):
        """Following stopped, its held count grew, or following resumed (`log.held == 0`)."""

        def __init__(self, log: BufferedLog) -> None:
            super().__init__()
            self.log = log

        @property
        def control(self) -> BufferedLog:
            return self.log

    def __init__(self, *, max_lines: int, id: str | None = None) -> None:
        super().__init__(max_lines=max_lines, auto_scroll=True, id=id)
        self._pending: deque[str] = deque(maxlen=max_lines)
        self._arrived = 0  # lines added since the last tick
        self.held = 0  # lines that arrived while following was stopped (the newest are kept)
        self._held_announced_at = 0.0

    def on_mount(self) -> None:
        self.set_interval(FLUSH_INTERVAL, self._flush)

    def add(self, line: str) -> None:
        self._pending.append(line)
        self._arrived += 1

    @property
    def pending(self) -> int:
        """Lines received and not yet written (held or waiting for the next tick)."""
        return len(self._pending)

    def reset(self) -> None:
        """Empty the log and its buffer, and follow again."""
        self.clear()
        self._pending.clear()
        self._arrived = 0
        if self.held:
            self.held = 0
            self.post_message(self.Held(self))

    def held_text(self) -> str:
        if not self.held:
            return ""
        kept = len(self._pending)
        dropped = f", the oldest {self.held - kept:,} dropped" if self.held > kept else ""
        return f"following paused: {self.held:,} new lines held{dropped} · end resumes"

    def _flush(self) -> None:
        arrived, self._arrived = self._arrived, 0
        reading_back = self.line_count > 0 and not self.is_vertical_scroll_end
        if reading_back and self._pending:
            started = not self.held
            self.held += arrived
            now = time.monotonic()
            if started or now - self._held_announced_at >= HELD_NOTICE_INTERVAL:
                self._held_announced_at = now
                self.post_message(self.Held(self))
            return
        if self._pending:
            lines = list(self._pending)
            self._pending.clear()
            self.write_lines(lines)
        if self.held:
            self.held = 0
            self.post_message(self.Held(self))
