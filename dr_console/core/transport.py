"""How commands reach a Barman node: a local subprocess or a pooled asyncssh connection.

(Implementation in progress; this is the interface the rest of the core codes against.)
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass


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


class Transport(abc.ABC):
    """Runs argv lists on one host. Never takes a shell string."""

    name: str

    @abc.abstractmethod
    async def run(
        self, argv: Sequence[str], timeout: float, stdin: str | None = None
    ) -> CommandResult: ...

    @abc.abstractmethod
    def stream(self, argv: Sequence[str], timeout: float | None = None) -> AsyncIterator[str]:
        """Yield output lines (stdout and stderr merged) as they come; cancellable."""

    @abc.abstractmethod
    async def close(self) -> None: ...
