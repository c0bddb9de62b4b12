"""Typed Barman failures. Each carries Barman's own message, the exit code and the argv."""

from __future__ import annotations

from collections.abc import Sequence


class BarmanError(Exception):
    """Barman ran but refused or failed. `message` is Barman's own words where it gave any."""

    default_kind = "error"

    def __init__(
        self,
        message: str,
        *,
        returncode: int | None = None,
        argv: Sequence[str] = (),
        kind: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.returncode = returncode
        self.argv = tuple(argv)
        self.kind = kind or self.default_kind

    def __str__(self) -> str:
        return self.message


class UnknownServer(BarmanError):
    """`Unknown server 'x'`: the node has no such server configured."""

    default_kind = "unknown-server"


class UnknownBackup(BarmanError):
    """`Unknown backup 'x' for server 'y'` (or a backup name that matches nothing)."""

    default_kind = "unknown-backup"


class BarmanLocked(BarmanError):
    """`Another backup process is running` (or another lock held by a running barman)."""

    default_kind = "locked"


class BarmanCrashed(BarmanError):
    """Barman reported an `_EXCEPTION` (an internal error, e.g. switch-wal on a passive node)."""

    default_kind = "crashed"


class BarmanOutputError(BarmanError):
    """Barman's output could not be understood (not JSON, wrong shape, wrong types)."""

    default_kind = "output"
