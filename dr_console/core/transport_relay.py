"""Commands on a host reached FROM a Barman node over ssh (a recovery destination).

The console has no key for a recovery destination, but the Barman node has one: `barman recover
--remote-ssh-command "ssh USER@HOST"` relies on it. Pre-flight checks and the restored instance
are reached the same way: `ssh -o BatchMode=yes USER@HOST -- 'quoted argv'` run on the node.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from dr_console.core.transport_base import (
    CommandResult,
    LineStream,
    Transport,
    TransportError,
    check_argv,
)

_TARGET_RE = re.compile(
    r"(?:[A-Za-z0-9_][A-Za-z0-9_.-]*@)?(?:[A-Za-z0-9_][A-Za-z0-9_.-]*|\[[0-9A-Fa-f:.]+\])"
)
SSH_UNREACHABLE = 255


class RelayTransport(Transport):
    def __init__(self, via: Transport, ssh_target: str, *, connect_timeout: float = 10.0) -> None:
        if not _TARGET_RE.fullmatch(ssh_target):
            raise ValueError(f"ssh target {ssh_target!r} is not [user@]host")
        self.via = via
        self.ssh_target = ssh_target
        self.connect_timeout = connect_timeout
        self.name = f"{ssh_target} (via {via.name})"

    def wrap(self, argv: Sequence[str]) -> list[str]:
        args = check_argv(argv)
        return [
            "ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(self.connect_timeout)}",
            self.ssh_target, "--", shlex.join(args),
        ]  # fmt: skip

    async def run(
        self, argv: Sequence[str], timeout: float, stdin: str | None = None
    ) -> CommandResult:
        token = self.began(argv)
        try:
            result = await self.via.run(self.wrap(argv), timeout=timeout, stdin=stdin)
        finally:
            self.ended(token)
        if result.returncode == SSH_UNREACHABLE:
            detail = result.stderr.strip().splitlines()
            raise TransportError(
                f"cannot reach {self.ssh_target} from {self.via.name} over ssh"
                + (f": {detail[-1]}" if detail else "")
            )
        return CommandResult(
            argv=tuple(argv),
            returncode=result.returncode,
            stdout=result.stdout,
            stderr=result.stderr,
            elapsed=result.elapsed,
        )

    def stream(self, argv: Sequence[str], timeout: float | None = None) -> LineStream:
        return self.via.stream(self.wrap(argv), timeout=timeout)

    async def close(self) -> None:
        """The node's transport belongs to its owner: nothing to close here."""
