"""The transport interface the rest of the core codes against (import it from core.transport)."""

from __future__ import annotations

import abc
import asyncio
import shlex
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

STREAM_CHUNK = 64 * 1024  # characters read at a time from a streamed command
MAX_LINE = 1024 * 1024  # a longer line comes out in pieces of this size


async def chunked_lines(
    read_chunk: Callable[[], Awaitable[str | None]],
) -> AsyncGenerator[str, None]:
    """The lines, without their endings, of the text READ_CHUNK returns until it returns None.

    Reading a chunk at a time makes a fast producer cost one await per chunk rather than one per
    line, and the event loop gets a turn after every chunk even when more output is already
    buffered: a log written at thousands of lines a second cannot hold up key presses.
    """
    pending = ""
    while (chunk := await read_chunk()) is not None:
        pending += chunk
        *complete, pending = pending.split("\n")
        for line in complete:
            line = line.rstrip("\r")
            while len(line) > MAX_LINE:
                yield line[:MAX_LINE]
                line = line[MAX_LINE:]
            yield line
        while len(pending) > MAX_LINE:
            yield pending[:MAX_LINE]
            pending = pending[MAX_LINE:]
        await asyncio.sleep(0)
    if pending:
        yield pending.rstrip("\r")


class TransportError(Exception):
    """The command could not be run at all (unreachable host, auth failure, host key...)."""


class CommandTimeout(TransportError):
    """The command ran longer than its timeout and was stopped."""


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    elapsed: float


class LineStream(AsyncIterator[str]):
    """Output lines of one command, stdout and stderr merged, without their line endings.

    The command starts when iteration starts. `returncode` is set once it has ended. Leaving the
    loop early does not stop it by itself: use `async with transport.stream(argv) as lines:` (or
    call `aclose()`), which kills the command. Cancelling the consuming task kills it too.
    """

    def __init__(
        self,
        argv: tuple[str, ...],
        produce: Callable[[LineStream], AsyncGenerator[str, None]],
    ) -> None:
        self.argv = argv
        self.returncode: int | None = None
        self._lines = produce(self)

    def __aiter__(self) -> LineStream:
        return self

    async def __anext__(self) -> str:
        return await self._lines.__anext__()

    async def aclose(self) -> None:
        await self._lines.aclose()

    async def __aenter__(self) -> LineStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def check_argv(argv: Sequence[str]) -> tuple[str, ...]:
    """Reject what can never be a valid argv (a programming error, not a user error)."""
    if isinstance(argv, str):
        raise TypeError("argv must be a list of arguments, not a shell string")
    args = tuple(argv)
    if not args or not args[0]:
        raise ValueError("argv must name a program")
    for arg in args:
        if not isinstance(arg, str):
            raise TypeError(f"argv items must be str, got {type(arg).__name__}: {arg!r}")
        if "\0" in arg:
            raise ValueError(f"argv item contains a NUL byte: {arg!r}")
    return args


def describe(argv: Sequence[str], limit: int = 120) -> str:
    """The command as a human reads it in a message, shortened when long."""
    text = shlex.join(argv)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def timeout_message(argv: Sequence[str], timeout: float, where: str = "") -> str:
    place = f" on {where}" if where else ""
    return f"`{describe(argv)}`{place} did not finish within {timeout:g} s and was stopped"


class Transport(abc.ABC):
    """Runs argv lists on one host. Never takes a shell string."""

    name: str
    # How many connections this transport has opened: a change means a new connection, after
    # which what was learnt about the host (its Barman version) is read again.
    connects: int = 0

    @abc.abstractmethod
    async def run(
        self, argv: Sequence[str], timeout: float, stdin: str | None = None
    ) -> CommandResult: ...

    # --- what is running now (for a caller's backstop: time spent queueing is not a hang) ---

    def began(self, argv: Sequence[str]) -> object:
        """Record a command that has started on the host; pass the token to ended()."""
        token = object()
        self.__dict__["_activity"] = time.monotonic()
        self.__dict__.setdefault("_in_flight", {})[token] = (describe(argv), time.monotonic())
        return token

    def ended(self, token: object) -> None:
        self.__dict__["_activity"] = time.monotonic()
        self.__dict__.get("_in_flight", {}).pop(token, None)

    def idle_for(self) -> float:
        """Seconds since a command last started or ended here (infinite: never)."""
        last = self.__dict__.get("_activity")
        return float("inf") if last is None else time.monotonic() - float(last)

    def in_flight(self) -> list[tuple[str, float]]:
        """The commands running on the host now, each with how long it has run (seconds)."""
        now = time.monotonic()
        return [(what, now - since) for what, since in self.__dict__.get("_in_flight", {}).values()]

    def stream(self, argv: Sequence[str], timeout: float | None = None) -> LineStream:
        """Yield output lines (stdout and stderr merged) as they come; cancellable."""
        args = check_argv(argv)
        return LineStream(args, lambda stream: self._lines(stream, timeout))

    def _lines(self, stream: LineStream, timeout: float | None) -> AsyncGenerator[str, None]:
        """The lines of `stream.argv` as it runs; sets stream.returncode when it ends.

        Implement this, or override stream() altogether (a transport that relays to another).
        """
        raise NotImplementedError(f"{type(self).__name__} cannot stream")

    @abc.abstractmethod
    async def close(self) -> None: ...
