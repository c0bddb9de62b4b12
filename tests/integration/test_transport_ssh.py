"""SshTransport against the lab's sshd: reuse, host keys, auth, timeouts, reconnects, streams."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dr_console.config import SshSpec, load_config
from dr_console.core.transport import (
    CommandTimeout,
    SshTransport,
    TransportError,
    TransportPool,
)
from dr_console.lab.lab import Lab

pytestmark = pytest.mark.integration


@pytest.fixture
def spec(lab: Lab) -> SshSpec:
    s = lab.settings
    return SshSpec(
        user=s.barman_user,
        host=s.bserver_address,
        port=s.ssh_port,
        key_file=lab.console_key,
        known_hosts=lab.console_known_hosts,
    )


@pytest.fixture
async def bserver(spec: SshSpec) -> AsyncIterator[SshTransport]:
    transport = SshTransport("bserver", spec, connect_timeout=10)
    yield transport
    await transport.close()


def _unique_sleep() -> str:
    """A `sleep` argument no other process uses, so the process can be found by its cmdline."""
    return f"30.{random.randrange(10**8):08d}"


def _pids_running(*argv: str) -> list[int]:
    wanted = ("\0".join(argv) + "\0").encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "cmdline").read_bytes() != wanted:
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            pids.append(int(entry.name))
    return pids


async def _until(predicate: object, within: float = 5.0) -> bool:
    assert callable(predicate)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return bool(predicate())


def _keygen(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=10
    )
    return path


async def test_runs_barman_with_exit_codes_stdin_and_exact_arguments(
    bserver: SshTransport,
) -> None:
    version = await bserver.run(["barman", "--version"], timeout=30)
    assert version.returncode == 0
    assert "3.19.1" in version.stdout + version.stderr

    failed = await bserver.run(["sh", "-c", "echo out; echo err >&2; exit 7"], timeout=10)
    assert (failed.returncode, failed.stdout, failed.stderr) == (7, "out\n", "err\n")

    fed = await bserver.run(["cat"], timeout=10, stdin="line 1\nline 2\n")
    assert fed.stdout == "line 1\nline 2\n"
    assert (await bserver.run(["cat"], timeout=10)).stdout == ""  # no stdin: EOF, no hang

    # every argument arrives as one word, untouched by the remote shell
    tricky = ["a b", "$HOME", "it's", "`id`", "x;y", "*", ""]
    echoed = await bserver.run(["printf", "%s|", *tricky], timeout=10)
    assert echoed.stdout == "|".join(tricky) + "|"


async def test_one_connection_serves_every_command(bserver: SshTransport, spec: SshSpec) -> None:
    # $PPID of the remote shell is the sshd process serving this client's connection
    argv = ["sh", "-c", "echo $PPID"]
    sequential = [(await bserver.run(argv, timeout=10)).stdout for _ in range(10)]
    concurrent = await asyncio.gather(*(bserver.run(argv, timeout=20) for _ in range(15)))
    serving = {out.strip() for out in sequential + [r.stdout for r in concurrent]}
    assert len(serving) == 1
    cmdline = Path(f"/proc/{serving.pop()}/cmdline").read_bytes()
    assert cmdline.startswith(f"sshd: {spec.user}@notty".encode())
    assert bserver.connects == 1


async def test_unknown_host_key_is_refused_with_how_to_add_it(
    spec: SshSpec, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.touch()
    t = SshTransport("bserver", _replace(spec, known_hosts=empty), connect_timeout=10)
    with pytest.raises(TransportError) as caught:
        await t.run(["true"], timeout=10)
    host, port = spec.host, spec.port
    assert str(caught.value) == (
        f"host key for {host}:{port} is not in {empty}: verify its fingerprint with the host's "
        f"administrator, then add it with `ssh-keyscan -p {port} {host} >> {empty}` after checking"
    )
    assert t.connects == 0


async def test_changed_host_key_is_refused_as_a_possible_attack(
    spec: SshSpec, tmp_path: Path
) -> None:
    other = _keygen(tmp_path / "other_host_key")
    known = tmp_path / "known_hosts"
    key_text = " ".join(Path(f"{other}.pub").read_text().split()[:2])
    known.write_text(f"[{spec.host}]:{spec.port} {key_text}\n")
    t = SshTransport("bserver", _replace(spec, known_hosts=known), connect_timeout=10)
    with pytest.raises(TransportError) as caught:
        await t.run(["true"], timeout=10)
    message = str(caught.value)
    assert message.startswith(f"host key for {spec.host}:{spec.port} does NOT match the one in")
    assert f"ssh-keygen -R '[{spec.host}]:{spec.port}' -f {known}" in message


async def test_a_key_the_node_does_not_know_is_refused(spec: SshSpec, tmp_path: Path) -> None:
    stranger = _keygen(tmp_path / "id_ed25519")
    t = SshTransport("bserver", _replace(spec, key_file=stranger), connect_timeout=10)
    with pytest.raises(TransportError) as caught:
        await t.run(["true"], timeout=10)
    assert str(caught.value).startswith(
        f"authentication failed for {spec.display()}: it did not accept the key {stranger}"
    )


async def test_a_closed_port_is_reported_as_refused(spec: SshSpec) -> None:
    port = (spec.port or 22) + 1
    with socket.socket() as probe:
        if probe.connect_ex((spec.host, port)) == 0:
            pytest.skip(f"something listens on {spec.host}:{port}")
    t = SshTransport("bserver", _replace(spec, port=port), connect_timeout=10)
    with pytest.raises(TransportError) as caught:
        await t.run(["true"], timeout=10)
    assert (
        str(caught.value) == f"cannot connect to {spec.user}@{spec.host}:{port}: connection refused"
    )


async def test_timeout_stops_the_remote_command(bserver: SshTransport) -> None:
    duration = _unique_sleep()
    started = time.monotonic()
    task = asyncio.create_task(bserver.run(["sleep", duration], timeout=1))
    assert await _until(lambda: _pids_running("sleep", duration))  # it really ran remotely
    with pytest.raises(CommandTimeout) as caught:
        await task
    assert time.monotonic() - started < 5
    assert str(caught.value) == (
        f"`sleep {duration}` on bserver did not finish within 1 s and was stopped"
    )
    assert await _until(lambda: not _pids_running("sleep", duration))
    # the connection survives a timed-out command
    assert (await bserver.run(["echo", "still here"], timeout=10)).stdout == "still here\n"
    assert bserver.connects == 1


async def test_reconnects_transparently_after_the_connection_is_killed(
    bserver: SshTransport,
) -> None:
    argv = ["sh", "-c", "echo $PPID"]
    serving = int((await bserver.run(argv, timeout=10)).stdout)
    os.kill(serving, signal.SIGKILL)
    again = await bserver.run(argv, timeout=10)
    assert again.returncode == 0
    assert int(again.stdout) != serving
    assert bserver.connects == 2


async def test_a_connection_lost_mid_command_is_reported_not_retried(
    bserver: SshTransport,
) -> None:
    duration = _unique_sleep()
    serving = int((await bserver.run(["sh", "-c", "echo $PPID"], timeout=10)).stdout)
    task = asyncio.create_task(bserver.run(["sleep", duration], timeout=20))
    assert await _until(lambda: _pids_running("sleep", duration))
    os.kill(serving, signal.SIGKILL)
    with pytest.raises(TransportError, match=r"was lost while running `sleep [0-9.]+`"):
        await asyncio.wait_for(task, 10)
    assert (await bserver.run(["true"], timeout=10)).returncode == 0
    for pid in _pids_running("sleep", duration):  # sshd leaves an orphan; do not leave it
        os.kill(pid, signal.SIGKILL)


async def test_stream_yields_lines_as_they_come(bserver: SshTransport) -> None:
    script = "for i in 1 2 3; do echo $i; sleep 0.2; done"
    seen: list[tuple[str, float]] = []
    started = time.monotonic()
    async with bserver.stream(["sh", "-c", script], timeout=10) as lines:
        async for line in lines:
            seen.append((line, time.monotonic() - started))
    assert [line for line, _ in seen] == ["1", "2", "3"]
    assert seen[2][1] - seen[0][1] >= 0.3  # delivered one by one, not at the end
    assert lines.returncode == 0

    merged = bserver.stream(["sh", "-c", "echo out; sleep 0.1; echo err >&2; exit 3"], timeout=10)
    assert [line async for line in merged] == ["out", "err"]
    assert merged.returncode == 3


async def test_cancelling_a_stream_stops_the_remote_command(bserver: SshTransport) -> None:
    duration = _unique_sleep()
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in bserver.stream(["sh", "-c", f"echo started; exec sleep {duration}"]):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 10)
    assert _pids_running("sleep", duration)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await _until(lambda: not _pids_running("sleep", duration))


async def test_stream_timeout_stops_the_remote_command(bserver: SshTransport) -> None:
    duration = _unique_sleep()
    received = []
    with pytest.raises(CommandTimeout):
        async for line in bserver.stream(
            ["sh", "-c", f"echo started; exec sleep {duration}"], timeout=1
        ):
            received.append(line)
    assert received == ["started"]
    assert await _until(lambda: not _pids_running("sleep", duration))


async def test_the_lab_config_reaches_both_nodes_through_the_pool(lab: Lab) -> None:
    config = load_config(lab.config_path)
    async with TransportPool(connect_timeout=10) as pool:
        for node in config.nodes:
            result = await pool.get(node).run(["id", "-un"], timeout=10)
            assert node.ssh is not None
            assert result.stdout.strip() == node.ssh.user


def _replace(spec: SshSpec, **changes: object) -> SshSpec:
    from dataclasses import replace

    return replace(spec, **changes)  # type: ignore[arg-type]
