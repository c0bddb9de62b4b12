"""Streamed output is split into lines a chunk at a time, whatever the chunk boundaries, and a
producer that is always ahead still lets the rest of the event loop run between chunks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from dr_console.core.transport_base import MAX_LINE, chunked_lines


def reader(chunks: list[str]) -> Callable[[], Awaitable[str | None]]:
    pending = list(chunks)

    async def read_chunk() -> str | None:
        return pending.pop(0) if pending else None

    return read_chunk


async def collect(chunks: list[str]) -> list[str]:
    return [line async for line in chunked_lines(reader(chunks))]


@pytest.mark.parametrize(
    ("chunks", "lines"),
    [
        (["one\ntwo\n"], ["one", "two"]),
        (["on", "e\ntw", "o\r\nthree"], ["one", "two", "three"]),  # no final newline
        (["a\n\n", "\nb\n"], ["a", "", "", "b"]),
        (["x\r", "\n"], ["x"]),
        ([], []),
        (["", "z\n"], ["z"]),  # an empty chunk is not the end
    ],
)
async def test_lines_do_not_depend_on_chunk_boundaries(chunks: list[str], lines: list[str]) -> None:
    assert await collect(chunks) == lines


async def test_a_line_longer_than_the_limit_comes_in_pieces() -> None:
    long = "y" * (MAX_LINE + 10)
    lines = await collect([long[:100], long[100:] + "\nend\n"])
    assert lines == ["y" * MAX_LINE, "y" * 10, "end"]


async def test_other_tasks_run_between_chunks_of_a_producer_that_is_always_ahead() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    seen: list[int] = []
    async for _ in chunked_lines(reader(["line\n" * 1000] * 20)):
        seen.append(ticks)
    task.cancel()
    # Every chunk is ready at once, yet the ticker ran between them: 20 distinct values.
    assert len(set(seen)) == 20
