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


def _data_dir(path: Path) -> Path:
    """What marks a PostgreSQL data directory (PG_VERSION beside global/), stopped."""
    (path / "global").mkdir(parents=True)
    (path / "pg_twophase").mkdir()
    (path / "PG_VERSION").write_text("15\n")
    return path


async def test_a_destination_inside_a_data_directory_is_refused_running_or_not(
    tmp_path: Path,
) -> None:
    data = _data_dir(tmp_path / "pgdata")
    for dest in (data / "pg_twophase", data / "not" / "yet" / "there"):
        report = await preflight(LOCAL, str(dest), need_bytes=None)
        assert {r.kind for r in report.refusals} == {RefusalKind.INSIDE_DATA_DIR}, dest
        assert f"inside the PostgreSQL data directory {data}" in report.refusals[0].message
    (tmp_path / "link").symlink_to(data / "pg_twophase")
    assert await kinds(tmp_path / "link") == {RefusalKind.INSIDE_DATA_DIR}
    assert await kinds(tmp_path / "beside") == set()


async def test_a_destination_inside_a_tablespace_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ts" / "PG_15_202209061" / "16384").mkdir(parents=True)
    assert await kinds(tmp_path / "ts" / "PG_15_202209061" / "16384" / "x") == {
        RefusalKind.INSIDE_DATA_DIR
    }


async def test_of_recoveries_claiming_one_destination_at_once_exactly_one_gets_it(
    tmp_path: Path,
) -> None:
    import asyncio

    from dr_console.core.preflight import CLAIM_NAME, claim_destination, release_destination

    for dest in (tmp_path / "absent" / "data", tmp_path / "empty"):
        if dest.name == "empty":
            dest.mkdir()
        outcomes = await asyncio.gather(
            *(claim_destination(LOCAL, str(dest), 30) for _ in range(6)), return_exceptions=True
        )
        won = [o for o in outcomes if o is None]
        lost = [o for o in outcomes if isinstance(o, PreflightRefused)]
        assert len(won) == 1 and len(lost) == 5, outcomes
        assert all("being recovered into by another drconsole" in str(e) for e in lost)
        if dest.name == "data":  # created by the claim, private as PostgreSQL wants it
            assert stat_mode(dest) == 0o700
        await release_destination(LOCAL, str(dest), 30)
        assert not (dest / CLAIM_NAME).exists() and list(dest.iterdir()) == []


async def test_a_claim_finds_what_was_written_after_the_preflight(tmp_path: Path) -> None:
    from dr_console.core.preflight import CLAIM_NAME, claim_destination

    (tmp_path / "postgresql.conf").write_text("# someone else's\n")
    with pytest.raises(PreflightRefused, match="is not empty any more"):
        await claim_destination(LOCAL, str(tmp_path), 30)
    assert not (tmp_path / CLAIM_NAME).exists()


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777
