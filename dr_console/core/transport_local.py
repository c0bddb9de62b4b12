"""Commands on the console's own host: asyncio subprocesses, argv only, one process group each."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import signal
import time
from collections.abc import AsyncGenerator, Sequence

from dr_console.core.transport_base import (
    STREAM_CHUNK,
    CommandResult,
    CommandTimeout,
    LineStream,
    Transport,
    TransportError,
    check_argv,
    chunked_lines,
    describe,
    timeout_message,
)

_LINE_LIMIT = 1024 * 1024  # the StreamReader buffer: reading pauses beyond twice this
_REAP_TIMEOUT = 5.0  # after SIGKILL, how long to wait for the kernel to reap the process


class LocalTransport(Transport):
    def __init__(self, name: str = "local") -> None:
        self.name = name

    async def run(
        self, argv: Sequence[str], timeout: float, stdin: str | None = None
    ) -> CommandResult:
        args = check_argv(argv)
        started = time.monotonic()
        proc = await _spawn(
            args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        data = stdin.encode() if stdin is not None else None
        token = self.began(args)
        try:
            out, err = await asyncio.wait_for(proc.communicate(data), timeout)
        except TimeoutError:
            await _kill_group(proc)
            raise CommandTimeout(timeout_message(args, timeout)) from None
        except BaseException:
            await _kill_group(proc)
            raise
        finally:
            self.ended(token)
        assert proc.returncode is not None  # communicate() returns after the process has exited
        return CommandResult(
            argv=args,
            returncode=proc.returncode,
            stdout=out.decode(errors="replace"),
            stderr=err.decode(errors="replace"),
            elapsed=time.monotonic() - started,
        )

    async def _lines(self, stream: LineStream, timeout: float | None) -> AsyncGenerator[str, None]:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        proc = await _spawn(
            stream.argv, stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.STDOUT
        )
        stdout = proc.stdout
        assert stdout is not None
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

        async def read_chunk() -> str | None:
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                raw = await asyncio.wait_for(stdout.read(STREAM_CHUNK), remaining)
            except TimeoutError:
                assert timeout is not None
                raise CommandTimeout(timeout_message(stream.argv, timeout)) from None
            return decoder.decode(raw, final=not raw) if raw else None

        try:
            async for line in chunked_lines(read_chunk):
                yield line
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                stream.returncode = await asyncio.wait_for(proc.wait(), remaining)
            except TimeoutError:
                assert timeout is not None
                raise CommandTimeout(timeout_message(stream.argv, timeout)) from None
        finally:
            if proc.returncode is None:
                await _kill_group(proc)
                stream.returncode = proc.returncode

    async def close(self) -> None:
        """Nothing is held between commands."""


async def _spawn(args: tuple[str, ...], *, stdin: int, stderr: int) -> asyncio.subprocess.Process:
    try:
        return await asyncio.create_subprocess_exec(
            *args,
            stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,  # its own process group, so a timeout can kill its children
            limit=_LINE_LIMIT,
        )
    except FileNotFoundError:
        raise TransportError(f"cannot run `{describe(args)}`: {args[0]} not found") from None
    except PermissionError:
        raise TransportError(f"cannot run `{describe(args)}`: permission denied") from None
    except OSError as exc:
        raise TransportError(f"cannot run `{describe(args)}`: {exc.strerror or exc}") from None


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the command's whole process group and reap it (bounded)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.shield(asyncio.wait_for(proc.wait(), _REAP_TIMEOUT))
