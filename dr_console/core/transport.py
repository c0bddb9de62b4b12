"""How commands reach a Barman node: a local subprocess or a pooled asyncssh connection.

Import everything transport-related from here. The interface lives in transport_base, the two
implementations in transport_local and transport_ssh; this module adds the factory and the pool.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from dr_console.config import NodeConfig
from dr_console.core.transport_base import (
    CommandResult,
    CommandTimeout,
    LineStream,
    Transport,
    TransportError,
)
from dr_console.core.transport_local import LocalTransport
from dr_console.core.transport_ssh import SshTransport

__all__ = [
    "CommandResult",
    "CommandTimeout",
    "LineStream",
    "LocalTransport",
    "SshTransport",
    "Transport",
    "TransportError",
    "TransportPool",
    "open_transport",
]


def open_transport(node: NodeConfig, *, connect_timeout: float) -> Transport:
    """The transport for one node: ssh when the node has an ssh spec, else this host.

    Nothing connects yet; an ssh transport connects on its first command.
    """
    if node.ssh is None:
        return LocalTransport(name=node.name)
    return SshTransport(node.name, node.ssh, connect_timeout=connect_timeout)


class TransportPool:
    """One transport per node, created on first use and closed together."""

    def __init__(self, *, connect_timeout: float) -> None:
        self.connect_timeout = connect_timeout
        self._transports: dict[str, Transport] = {}

    def get(self, node: NodeConfig) -> Transport:
        transport = self._transports.get(node.name)
        if transport is None:
            transport = open_transport(node, connect_timeout=self.connect_timeout)
            self._transports[node.name] = transport
        return transport

    async def close_all(self) -> None:
        transports = list(self._transports.values())
        self._transports.clear()
        await asyncio.gather(*(t.close() for t in transports), return_exceptions=True)

    async def __aenter__(self) -> TransportPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close_all()
