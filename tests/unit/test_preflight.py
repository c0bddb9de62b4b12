"""Pre-flight checks run for real on this host through the local transport."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from dr_console.core.preflight import PreflightRefused, RefusalKind, preflight
from dr_console.core.restored import RestoredError, parse_state
from dr_console.core.transport import LocalTransport
from dr_console.core.transport_relay import RelayTransport

LOCAL = LocalTransport(name="here")


async def kinds(path: Path, **kw: object) -> set[RefusalKind]:
    report = await preflight(LOCAL, str(path), need_bytes=kw.pop("need", 1024), **kw)  # type: ignore[arg-type]
    return {r.kind for r in report.refusals}


async def test_absent_and_empty_destinations_pass(tmp_path: Path) -> None:
    assert await kinds(tmp_path / "new" / "deeper") == set()
    (tmp_path / "empty").mkdir()
    assert await kinds(tmp_path / "empty") == set()


async def test_non_empty_directory_is_refused_with_what_is_there(tmp_path: Path) -> None:
    (tmp_path / "PG_VERSION").write_text("15\n")
    report = await preflight(LOCAL, str(tmp_path), need_bytes=None)
    with pytest.raises(PreflightRefused) as info:
        report.raise_if_refused()
    assert info.value.kinds == {RefusalKind.NOT_EMPTY}
    assert "PG_VERSION" in str(info.value) and "never overwrites" in str(info.value)
    assert report.warnings == ["the backup's size is unknown: free space was not compared"]


async def test_running_server_and_stale_pid_file(tmp_path: Path) -> None:
    (tmp_path / "postmaster.pid").write_text(f"{os.getpid()}\n/data\n")
    assert await kinds(tmp_path) == {RefusalKind.NOT_EMPTY, RefusalKind.RUNNING_SERVER}
    (tmp_path / "postmaster.pid").write_text("4194999\n")  # above pid_max: not running
    assert await kinds(tmp_path) == {RefusalKind.NOT_EMPTY, RefusalKind.PID_FILE}


async def test_file_in_the_way_and_no_space(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert await kinds(tmp_path / "f") == {RefusalKind.NOT_A_DIRECTORY}
    report = await preflight(LOCAL, str(tmp_path / "d"), need_bytes=1 << 60)
    assert {r.kind for r in report.refusals} == {RefusalKind.NO_SPACE}
    assert "free" in report.refusals[0].message and "need" in report.refusals[0].message


async def test_busy_port_is_refused(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert await kinds(tmp_path / "d", port=port) == {RefusalKind.PORT_BUSY}
    assert await kinds(tmp_path / "d", port=port) == set()


def test_relay_quotes_the_remote_command() -> None:
    relay = RelayTransport(LOCAL, "postgres@pgserver")
    wrapped = relay.wrap(["ls", "-A", "--", "/a dir/$(x)"])
    assert wrapped[:3] == ["ssh", "-o", "BatchMode=yes"]
    assert wrapped[-3:] == ["postgres@pgserver", "--", "ls -A -- '/a dir/$(x)'"]
    with pytest.raises(ValueError):
        RelayTransport(LOCAL, "-oProxyCommand=x")


def test_replay_state_parsing() -> None:
    paused = parse_state("t|paused|0/3000060|2026-11-30 17:25:00.1+00|1\n")
    assert paused.finished and paused.replay_lsn == "0/3000060"
    assert not parse_state("t|not paused|0/3000060||1").finished
    assert parse_state("f|not paused|0/3000060||2").finished
    with pytest.raises(RestoredError):
        parse_state("ERROR: boom")


async def test_port_free_sees_a_listener() -> None:
    from dr_console.core.preflight import port_free

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert await port_free(LOCAL, port) is False
    assert await port_free(LOCAL, port) is True
