"""LocalTransport against real subprocesses: what a caller sees, and that nothing is left behind."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path

import pytest

from dr_console.core.transport import CommandTimeout, LocalTransport, TransportError


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def _wait_gone(pid: int, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        await asyncio.sleep(0.05)
    return not _alive(pid)


async def _read_pids(path: Path, count: int, within: float = 5.0) -> list[int]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if path.exists():
            pids = path.read_text().split()
            if len(pids) >= count:
                return [int(p) for p in pids]
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} never held {count} pids")


# A shell that starts a grandchild sleep in its process group and records both pids.
def _tree(pidfile: Path, seconds: int = 30) -> list[str]:
    script = f'sleep {seconds} & echo "$$ $!" > "$1"; echo started; wait'
    return ["sh", "-c", script, "sh", str(pidfile)]


async def test_run_returns_exit_code_and_separate_outputs() -> None:
    t = LocalTransport()
    result = await t.run(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=5)
    assert result.returncode == 3
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"
    assert result.argv == ("sh", "-c", "echo out; echo err >&2; exit 3")
    assert result.elapsed > 0


async def test_run_feeds_stdin_and_closes_it_when_none() -> None:
    t = LocalTransport()
    fed = await t.run(["cat"], timeout=5, stdin="line 1\nline 2\n")
    assert fed.stdout == "line 1\nline 2\n"
    # without stdin the command reads EOF at once instead of hanging until the timeout
    empty = await t.run(["cat"], timeout=5)
    assert empty.returncode == 0
    assert empty.stdout == ""


async def test_arguments_are_never_interpreted_by_a_shell(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("x")
    t = LocalTransport()
    result = await t.run(["echo", f"$HOME; rm {victim}", "`id`"], timeout=5)
    assert result.stdout == f"$HOME; rm {victim} `id`\n"
    assert victim.exists()
    with pytest.raises(TypeError, match="not a shell string"):
        await t.run("echo hi", timeout=5)


async def test_undecodable_output_is_replaced_not_fatal() -> None:
    result = await LocalTransport().run(["printf", "a\\377b"], timeout=5)
    assert result.stdout == "a\ufffdb"


async def test_missing_program_is_a_clear_error() -> None:
    with pytest.raises(TransportError, match=r"cannot run `no-such-drconsole-cmd x`: .*not found"):
        await LocalTransport().run(["no-such-drconsole-cmd", "x"], timeout=5)


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    started = time.monotonic()
    with pytest.raises(CommandTimeout) as caught:
        await LocalTransport().run(_tree(pidfile), timeout=0.5)
    assert time.monotonic() - started < 3
    message = str(caught.value)
    assert "sleep 30 &" in message and "0.5 s" in message
    shell, grandchild = await _read_pids(pidfile, 2)
    assert await _wait_gone(shell)
    assert await _wait_gone(grandchild)


async def test_stream_yields_merged_lines_in_order_as_they_come() -> None:
    script = "echo one; sleep 0.3; echo two >&2; sleep 0.3; printf three"
    seen: list[tuple[str, float]] = []
    started = time.monotonic()
    async with LocalTransport().stream(["sh", "-c", script + "; exit 4"], timeout=10) as lines:
        async for line in lines:
            seen.append((line, time.monotonic() - started))
    assert [line for line, _ in seen] == ["one", "two", "three"]
    assert seen[0][1] < 0.3 <= seen[2][1]  # the first line came before the command ended
    assert lines.returncode == 4


async def test_stream_timeout_stops_the_command(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    received: list[str] = []
    with pytest.raises(CommandTimeout, match=r"did not finish within 0\.5 s"):
        async for line in LocalTransport().stream(_tree(pidfile), timeout=0.5):
            received.append(line)
    assert received == ["started"]
    for pid in await _read_pids(pidfile, 2):
        assert await _wait_gone(pid)


async def test_cancelling_the_consumer_kills_the_command(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    first_line = asyncio.Event()

    async def consume() -> None:
        async for _ in LocalTransport().stream(_tree(pidfile)):
            first_line.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_line.wait(), 5)
    pids = await _read_pids(pidfile, 2)
    assert all(_alive(pid) for pid in pids)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    for pid in pids:
        assert await _wait_gone(pid)


async def test_leaving_a_stream_early_kills_the_command(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    async with LocalTransport().stream(_tree(pidfile)) as lines:
        async for line in lines:
            assert line == "started"
            break
    for pid in await _read_pids(pidfile, 2):
        assert await _wait_gone(pid)
    assert lines.returncode is not None and lines.returncode < 0  # killed by a signal


async def test_stream_splits_an_overlong_line_instead_of_failing() -> None:
    size = 3 * 1024 * 1024
    lines = [
        line
        async for line in LocalTransport().stream(
            [sys.executable, "-c", f"print('x' * {size}); print('end')"], timeout=20
        )
    ]
    assert "".join(lines[:-1]) == "x" * size
    assert lines[-1] == "end"


async def test_stream_of_a_missing_program_is_a_clear_error() -> None:
    with pytest.raises(TransportError, match="not found"):
        async for _ in LocalTransport().stream(["no-such-drconsole-cmd"]):
            pass


def test_name_defaults_to_local() -> None:
    assert LocalTransport().name == "local"
    assert LocalTransport(name="bserver").name == "bserver"
