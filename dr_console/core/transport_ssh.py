"""Commands on a Barman node over one pooled asyncssh connection per node.

Host keys are always verified (spec.known_hosts, else the user's OpenSSH settings); there is
deliberately no way to turn that off. A dropped connection is re-established on the next command;
repeated failures back off exponentially and fail fast meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shlex
import socket
import time
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from typing import Any

import asyncssh

from dr_console.config import SshSpec
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

_TERM_GRACE = 1.0  # after SIGTERM to a timed-out remote command, how long before SIGKILL
_STOP_TIMEOUT = 2.0  # after killing a remote command, how long to wait for its channel to close
# OpenSSH's sshd allows 10 sessions per connection (MaxSessions) and frees a slot a little after
# the client sees the channel close: 10 (or even 8) concurrent commands get "open failed" at times.
_MAX_SESSIONS = 6
_REOPEN_DELAY = 0.2

_Process = asyncssh.SSHClientProcess[str]


class SshTransport(Transport):
    def __init__(
        self,
        node_name: str,
        spec: SshSpec,
        *,
        connect_timeout: float,
        keepalive_interval: float = 15.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.name = node_name
        self.spec = spec
        self.connect_timeout = connect_timeout
        self.keepalive_interval = keepalive_interval
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.connects = 0  # successful handshakes so far: 1 for a healthy node, whatever it ran
        self._conn: asyncssh.SSHClientConnection | None = None
        self._lock = asyncio.Lock()
        self._sessions = asyncio.Semaphore(_MAX_SESSIONS)
        self._failures = 0
        self._retry_at = 0.0
        self._last_error = ""
        # the known-hosts files the ssh settings name (used when known_hosts is unset)
        self._known_hosts_files: list[str] = []

    # --- commands ----------------------------------------------------------------------------

    async def run(
        self, argv: Sequence[str], timeout: float, stdin: str | None = None
    ) -> CommandResult:
        args = check_argv(argv)
        started = time.monotonic()
        async with self._sessions:
            proc = await self._start(args, stdin=stdin, merge_stderr=False)
            token = self.began(args)
            try:
                out, err = await asyncio.wait_for(proc.communicate(), timeout)
            except TimeoutError:
                await _stop(proc)
                raise CommandTimeout(timeout_message(args, timeout, self.name)) from None
            except (asyncssh.Error, OSError):
                # the connection died under the command (sshd killed, network cut)
                await _stop(proc)
                raise TransportError(self._lost_message(args)) from None
            except BaseException:
                await _stop(proc)
                raise
            finally:
                self.ended(token)
        returncode = proc.returncode
        if returncode is None:
            raise TransportError(self._lost_message(args))
        return CommandResult(
            argv=args,
            returncode=returncode,
            stdout=out,
            stderr=err,
            elapsed=time.monotonic() - started,
        )

    async def _lines(self, stream: LineStream, timeout: float | None) -> AsyncGenerator[str, None]:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout

        def remaining() -> float | None:
            return None if deadline is None else max(0.0, deadline - loop.time())

        async with self._sessions:
            proc = await self._start(stream.argv, stdin=None, merge_stderr=True)

            async def read_chunk() -> str | None:
                chunk: str = await asyncio.wait_for(proc.stdout.read(STREAM_CHUNK), remaining())
                return chunk or None

            try:
                async for line in chunked_lines(read_chunk):
                    yield line
                await asyncio.wait_for(proc.wait_closed(), remaining())
            except TimeoutError:
                assert timeout is not None
                raise CommandTimeout(timeout_message(stream.argv, timeout, self.name)) from None
            except (asyncssh.Error, OSError):
                raise TransportError(self._lost_message(stream.argv)) from None
            finally:
                if proc.returncode is None:
                    await _stop(proc)
            stream.returncode = proc.returncode
            if proc.returncode is None:
                raise TransportError(self._lost_message(stream.argv))

    async def _start(
        self, args: tuple[str, ...], *, stdin: str | None, merge_stderr: bool
    ) -> _Process:
        command = shlex.join(args)
        stderr: Any = asyncssh.STDOUT if merge_stderr else asyncssh.PIPE
        # A connection that died since its last use is only noticed when a channel cannot be
        # opened: reconnect once and try again (nothing ran on the dead connection). A refused
        # channel on a live connection (sshd still counting a just-closed session) is retried too.
        for attempt in (1, 2):
            conn = await self._connection()
            try:
                return await conn.create_process(
                    command,
                    input=stdin or None,
                    stdin=asyncssh.PIPE if stdin else asyncssh.DEVNULL,
                    stderr=stderr,
                    encoding="utf-8",
                    errors="replace",
                )
            except (asyncssh.Error, OSError) as exc:
                if attempt == 1 and self._drop_if_dead(conn):
                    continue
                if attempt == 1 and isinstance(exc, asyncssh.ChannelOpenError):
                    await asyncio.sleep(_REOPEN_DELAY)
                    continue
                reason = getattr(exc, "reason", "") or str(exc) or type(exc).__name__
                raise TransportError(
                    f"cannot start `{describe(args)}` on {self.name}: {reason}"
                ) from None
        raise AssertionError("unreachable")

    def _drop_if_dead(self, conn: asyncssh.SSHClientConnection) -> bool:
        if not conn.is_closed():
            return False
        if self._conn is conn:
            self._conn = None
        return True

    def _lost_message(self, args: Sequence[str]) -> str:
        return (
            f"connection to {self.name} ({self.spec.display()}) was lost while running "
            f"`{describe(args)}`; its outcome is unknown"
        )

    # --- the connection ----------------------------------------------------------------------

    async def _connection(self) -> asyncssh.SSHClientConnection:
        conn = self._conn
        if conn is not None and not conn.is_closed():
            return conn
        async with self._lock:  # concurrent callers share one connect attempt
            conn = self._conn
            if conn is not None and not conn.is_closed():
                return conn
            loop = asyncio.get_running_loop()
            wait = self._retry_at - loop.time()
            if wait > 0:
                raise TransportError(
                    f"node {self.name} unreachable: {self._last_error}, "
                    f"retrying in {math.ceil(wait)} s"
                )
            try:
                conn = await self._connect()
            except TransportError as exc:
                self._failures += 1
                delay = self.backoff_initial * 2 ** (self._failures - 1)
                self._retry_at = loop.time() + min(self.backoff_max, delay)
                self._last_error = str(exc)
                raise
            self._failures = 0
            self._retry_at = 0.0
            self._conn = conn
            self.connects += 1
            return conn

    async def _connect(self) -> asyncssh.SSHClientConnection:
        spec = self.spec
        options: dict[str, Any] = {
            "connect_timeout": self.connect_timeout,
            "keepalive_interval": self.keepalive_interval,
            "keepalive_count_max": 3,
        }
        if spec.port:
            options["port"] = spec.port
        if spec.user:
            options["username"] = spec.user
        if spec.config_file is not None:
            options["config"] = [str(_readable(spec.config_file, "ssh config file", self.name))]
        if spec.known_hosts is not None:
            options["known_hosts"] = str(_readable(spec.known_hosts, "known_hosts file", self.name))
        else:
            options["known_hosts"] = await self._known_hosts_from_ssh_config(options)
        if spec.key_file is not None:
            # An explicit key is the only identity offered (like IdentitiesOnly in OpenSSH).
            options["client_keys"] = [str(_readable(spec.key_file, "ssh key", self.name))]
            options["agent_path"] = None
        try:
            return await asyncio.wait_for(
                asyncssh.connect(spec.host, **options), self.connect_timeout + 1.0
            )
        except asyncssh.HostKeyNotVerifiable:
            raise TransportError(self._host_key_message()) from None
        except asyncssh.PermissionDenied:
            raise TransportError(self._auth_message()) from None
        except asyncssh.KeyEncryptionError:
            raise TransportError(
                f"cannot use ssh key {spec.key_file} for {self.name}: it is protected by a "
                "passphrase; load it into ssh-agent and leave key_file unset"
            ) from None
        except (asyncssh.KeyImportError, ValueError) as exc:
            what = f"ssh key {spec.key_file}" if spec.key_file else "the ssh settings"
            raise TransportError(f"cannot use {what} for {self.name}: {exc}") from None
        except TimeoutError:
            raise TransportError(
                f"cannot connect to {spec.display()}: no answer within {self.connect_timeout:g} s"
            ) from None
        except ConnectionRefusedError:
            raise TransportError(
                f"cannot connect to {spec.display()}: connection refused"
            ) from None
        except socket.gaierror as exc:
            raise TransportError(
                f"cannot connect to {spec.display()}: host name {spec.host!r} not found "
                f"({exc.strerror})"
            ) from None
        except OSError as exc:
            raise TransportError(
                f"cannot connect to {spec.display()}: {exc.strerror or exc}"
            ) from None
        except asyncssh.Error as exc:
            raise TransportError(f"ssh to {spec.display()} failed: {exc.reason}") from None

    async def _known_hosts_from_ssh_config(self, options: dict[str, Any]) -> list[str] | bytes:
        """The known-hosts files OpenSSH's settings name for this host, passed to asyncssh
        explicitly so that no config line can turn verification off.

        asyncssh treats `UserKnownHostsFile none` (in the node's ssh_config or ~/.ssh/config) as
        "accept any host key"; here it is an error instead. Files that do not exist are left out;
        when none is left, every host key is unverifiable and the connection is refused.
        """
        source = str(self.spec.config_file) if self.spec.config_file else "~/.ssh/config"
        try:
            probe = await asyncssh.SSHClientConnectionOptions.construct(
                host=self.spec.host, port=options.get("port", ()),
                username=options.get("username", ()), config=options.get("config", ()),
                client_keys=None, agent_path=None,
            )
        except (OSError, ValueError, asyncssh.Error) as exc:
            raise TransportError(f"cannot use the ssh settings for {self.name}: {exc}") from None
        if probe.known_hosts is None:
            raise TransportError(
                f"{source} sets UserKnownHostsFile none for {self.spec.host}, which would turn "
                f"off host key verification for node {self.name}; drconsole always verifies host "
                "keys: remove that line or set known_hosts = FILE for this node"
            )
        named = probe.known_hosts if isinstance(probe.known_hosts, list) else []
        files = [str(Path(str(f)).expanduser()) for f in named if isinstance(f, str)]
        if not files:
            files = [str(Path("~/.ssh/known_hosts").expanduser())]
        usable = [f for f in files if os.path.isfile(f) and os.access(f, os.R_OK)]
        self._known_hosts_files = usable or files[:1]
        return usable if usable else b""

    def _host_key_message(self) -> str:
        spec = self.spec
        port = spec.port or 22
        where = str(spec.known_hosts) if spec.known_hosts else next(
            iter(self._known_hosts_files), "~/.ssh/known_hosts")
        scan = f"ssh-keyscan {'-p ' + str(port) + ' ' if port != 22 else ''}{spec.host}"
        entry = f"[{spec.host}]:{port}" if port != 22 else spec.host
        if self._host_is_known():
            return (
                f"host key for {spec.host}:{port} does NOT match the one in {where}: the host "
                "was reinstalled or someone is intercepting the connection. Verify the new "
                "fingerprint with the host's administrator; only then remove the old entry with "
                f"`ssh-keygen -R '{entry}' -f {where}` and add the new one with "
                f"`{scan} >> {where}`"
            )
        return (
            f"host key for {spec.host}:{port} is not in {where}: verify its fingerprint with "
            f"the host's administrator, then add it with `{scan} >> {where}` after checking"
        )

    def _host_is_known(self) -> bool:
        """Does the known_hosts file hold another key for this host (a changed key)?"""
        paths = ([str(self.spec.known_hosts)] if self.spec.known_hosts
                 else self._known_hosts_files)
        port = self.spec.port if self.spec.port and self.spec.port != 22 else None
        for path in paths:
            try:
                keys = asyncssh.match_known_hosts(path, self.spec.host, self.spec.host, port)
            except (OSError, ValueError):
                continue
            if keys[0]:
                return True
        return False

    def _auth_message(self) -> str:
        spec = self.spec
        offered = (
            f"the key {spec.key_file}"
            if spec.key_file
            else "the ssh agent's keys or the default keys (~/.ssh/id_*)"
        )
        keys = f"~{spec.user}/.ssh/authorized_keys" if spec.user else "~/.ssh/authorized_keys"
        return (
            f"authentication failed for {spec.display()}: it did not accept {offered}; check "
            f"that the matching public key is in {keys} on {spec.host}"
        )

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conn.wait_closed(), _STOP_TIMEOUT)


def _readable(path: Path, what: str, node: str) -> Path:
    path = path.expanduser()
    if not os.access(path, os.R_OK):
        reason = "does not exist" if not path.exists() else "is not readable"
        raise TransportError(f"{what} {path} for node {node} {reason}")
    return path


async def _stop(proc: _Process) -> None:
    """Stop the remote command, then close its channel.

    OpenSSH's sshd delivers a signal request to the command's whole process group, but only for
    non-root logins (it needs privilege separation) and from 7.9 on; otherwise closing the channel
    is all we can do, and the command runs on until it writes or ends.
    """
    for signame in ("TERM", "KILL"):
        try:
            proc.send_signal(signame)
        except (OSError, asyncssh.Error):
            break  # the channel is already closed
        with contextlib.suppress(TimeoutError, asyncssh.Error, OSError):
            await asyncio.wait_for(proc.wait_closed(), _TERM_GRACE)
        if proc.returncode is not None:
            break
    proc.close()
    with contextlib.suppress(TimeoutError, asyncssh.Error, OSError):
        await asyncio.wait_for(proc.wait_closed(), _STOP_TIMEOUT)
