"""SshTransport failures that need no lab: a closed loopback port and missing local files."""

from __future__ import annotations

import asyncio
import inspect
import socket
import subprocess
from pathlib import Path

import pytest

from dr_console.config import SshSpec
from dr_console.core.transport import SshTransport, TransportError


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spec(tmp_path: Path, port: int, **kw: object) -> SshSpec:
    known = tmp_path / "known_hosts"
    known.touch()
    key = tmp_path / "id_ed25519"
    if not key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=10
        )
    values: dict[str, object] = {"key_file": key, "known_hosts": known}
    values.update(kw)
    return SshSpec(user="bmuser", host="127.0.0.1", port=port, **values)  # type: ignore[arg-type]


async def test_refused_connection_names_the_target_then_backs_off(tmp_path: Path) -> None:
    port = _closed_port()
    t = SshTransport("bserver", _spec(tmp_path, port), connect_timeout=3)
    with pytest.raises(TransportError) as first:
        await t.run(["true"], timeout=5)
    assert str(first.value) == f"cannot connect to bmuser@127.0.0.1:{port}: connection refused"

    # while backing off, callers fail fast without trying again
    with pytest.raises(TransportError) as fast:
        await asyncio.wait_for(t.run(["true"], timeout=5), 0.2)
    assert str(fast.value) == (
        f"node bserver unreachable: cannot connect to bmuser@127.0.0.1:{port}: "
        "connection refused, retrying in 1 s"
    )

    # the delay doubles after each failed attempt: 0.5 s, 1 s, 2 s
    await asyncio.sleep(0.6)
    with pytest.raises(TransportError, match=r"connection refused$"):
        await t.run(["true"], timeout=5)
    await asyncio.sleep(1.1)
    with pytest.raises(TransportError, match=r"connection refused$"):
        await t.run(["true"], timeout=5)
    with pytest.raises(TransportError, match=r"retrying in 2 s$"):
        await t.run(["true"], timeout=5)
    assert t.connects == 0
    await t.close()


async def test_backoff_is_bounded(tmp_path: Path) -> None:
    t = SshTransport("bserver", _spec(tmp_path, _closed_port()), connect_timeout=3, backoff_max=0.3)
    for _ in range(4):
        with pytest.raises(TransportError, match=r"connection refused$"):
            await t.run(["true"], timeout=5)
        await asyncio.sleep(0.35)


async def test_concurrent_callers_share_one_connect_attempt(tmp_path: Path) -> None:
    t = SshTransport("bserver", _spec(tmp_path, _closed_port()), connect_timeout=3)
    results = await asyncio.gather(
        *(t.run(["true"], timeout=5) for _ in range(5)), return_exceptions=True
    )
    messages = sorted(str(r) for r in results)
    assert all(isinstance(r, TransportError) for r in results)
    assert sum(m.endswith(": connection refused") for m in messages) == 1
    assert sum("retrying in" in m for m in messages) == 4


async def test_missing_key_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "id_ed25519"
    t = SshTransport(
        "geobserver", _spec(tmp_path, _closed_port(), key_file=missing), connect_timeout=3
    )
    with pytest.raises(TransportError) as caught:
        await t.run(["true"], timeout=5)
    assert str(caught.value) == f"ssh key {missing} for node geobserver does not exist"


async def test_missing_known_hosts_is_named_never_ignored(tmp_path: Path) -> None:
    missing = tmp_path / "known_hosts.missing"
    t = SshTransport(
        "geobserver", _spec(tmp_path, _closed_port(), known_hosts=missing), connect_timeout=3
    )
    with pytest.raises(TransportError) as caught:
        await t.run(["true"], timeout=5)
    assert str(caught.value) == f"known_hosts file {missing} for node geobserver does not exist"


def test_there_is_no_way_to_skip_host_key_checking() -> None:
    params = set(inspect.signature(SshTransport).parameters)
    assert params == {
        "node_name",
        "spec",
        "connect_timeout",
        "keepalive_interval",
        "backoff_initial",
        "backoff_max",
    }


async def test_an_unusable_key_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "not_a_key"
    bad.write_text("hello\n")
    t = SshTransport("bserver", _spec(tmp_path, _closed_port(), key_file=bad), connect_timeout=3)
    with pytest.raises(TransportError) as caught:
        await t.run(["true"], timeout=5)
    assert str(caught.value).startswith(f"cannot use ssh key {bad} for bserver: ")


async def test_an_ssh_config_saying_known_hosts_none_is_refused_before_connecting(
    tmp_path: Path,
) -> None:
    """With known_hosts unset, asyncssh would take `UserKnownHostsFile none` as "trust any key";
    the node is refused instead, the file named, and no connection is attempted (the port is
    closed: a connection attempt would say "connection refused")."""
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text("Host *\n    UserKnownHostsFile none\n")
    spec = _spec(tmp_path, _closed_port(), known_hosts=None, config_file=ssh_config)
    t = SshTransport("bserver", spec, connect_timeout=3)
    with pytest.raises(TransportError) as info:
        await t.run(["true"], timeout=5)
    message = str(info.value)
    assert f"{ssh_config} sets UserKnownHostsFile none" in message
    assert "always verifies host keys" in message and "connection refused" not in message
