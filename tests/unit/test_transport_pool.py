"""open_transport picks the way to a node from its config; the pool keeps one transport per node."""

from __future__ import annotations

from pathlib import Path

from dr_console.config import NodeConfig, SshSpec
from dr_console.core.transport import (
    LocalTransport,
    SshTransport,
    TransportPool,
    open_transport,
)
from dr_console.models import NodeRole

LOCAL = NodeConfig(name="here", role=NodeRole.PRIMARY)
REMOTE = NodeConfig(
    name="bserver",
    role=NodeRole.PRIMARY,
    ssh=SshSpec(user="bmuser", host="127.0.0.3", port=2222, known_hosts=Path("/kh")),
)


def test_a_node_without_ssh_runs_locally_under_its_own_name() -> None:
    transport = open_transport(LOCAL, connect_timeout=5)
    assert isinstance(transport, LocalTransport)
    assert transport.name == "here"


def test_a_node_with_ssh_gets_an_ssh_transport_with_its_settings() -> None:
    transport = open_transport(REMOTE, connect_timeout=7)
    assert isinstance(transport, SshTransport)
    assert transport.name == "bserver"
    assert transport.spec == REMOTE.ssh
    assert transport.connect_timeout == 7


async def test_pool_reuses_one_transport_per_node_and_closes_them_all() -> None:
    pool = TransportPool(connect_timeout=5)
    first = pool.get(REMOTE)
    assert pool.get(REMOTE) is first
    assert pool.get(LOCAL) is not first
    await pool.close_all()
    assert pool.get(REMOTE) is not first  # closed transports are forgotten


async def test_local_commands_work_through_the_pool() -> None:
    async with TransportPool(connect_timeout=5) as pool:
        result = await pool.get(LOCAL).run(["echo", "ok"], timeout=5)
    assert result.stdout == "ok\n"
