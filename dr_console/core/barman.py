"""Barman adapter: builds barman argv, runs it through a Transport and parses the output.

Reports (status, check, list-backups...) run with `-f json` and use Barman's multi-server forms,
so one barman process serves every server of a node (`all` when no servers are given). The
exceptions, measured on Barman 3.19.1: `show-backup` and `list-processes` take one server, and
`sync-info` and `diagnose` print their own JSON and must run WITHOUT `-f json`.

Operations (backup, switch-wal, cron, keep, delete, recover) are only built here, as argv with
validated inputs, in console format so that the job log shows Barman's own lines; the jobs
engine runs them detached.

Errors: Barman's `_ERROR` / `_EXCEPTION` lists, `ERROR:` lines and exit codes become the typed
errors of `barman_errors` carrying Barman's own message. Transport failures (unreachable host,
timeout) propagate as `TransportError` / `CommandTimeout` from `core.transport`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from dr_console.core.barman_errors import (
    BarmanCrashed,
    BarmanError,
    BarmanLocked,
    BarmanOutputError,
    UnknownBackup,
    UnknownServer,
)
from dr_console.core.barman_parse import (
    Messages,
    NagiosResult,
    ReplicationStatus,
    load_json,
    parse_check,
    parse_diagnose,
    parse_list_backups,
    parse_list_processes,
    parse_list_servers,
    parse_messages,
    parse_nagios,
    parse_replication_status,
    parse_show_backup,
    parse_show_servers,
    parse_status,
    parse_sync_info,
)
from dr_console.core.barman_versions import Capabilities, Feature
from dr_console.core.transport_base import CommandResult, Transport
from dr_console.core.validation import (
    UnsafeValue,
    check_backup_id,
    check_backup_name,
    check_executable,
    check_path,
    check_positive_int,
    check_server_name,
    check_text,
    check_wal_name,
)
from dr_console.models import (
    Backup,
    BackupDetail,
    BarmanCheck,
    BarmanProcess,
    BarmanStatus,
    SyncInfo,
)

__all__ = [
    "BarmanClient",
    "BarmanCrashed",
    "BarmanError",
    "BarmanLocked",
    "BarmanOutputError",
    "Messages",
    "NagiosResult",
    "RecoverSpec",
    "ReplicationStatus",
    "TargetKind",
    "UnknownBackup",
    "UnknownServer",
    "classify_error",
    "json_result",
    "plain_result",
]

T = TypeVar("T")
TargetKind = Literal["time", "lsn", "xid", "name", "immediate"]
TargetAction = Literal["pause", "promote", "shutdown"]

_TARGET_FLAGS: dict[str, str] = {
    "time": "--target-time",
    "lsn": "--target-lsn",
    "xid": "--target-xid",
    "name": "--target-name",
}
_LSN_RE = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")
_TIME_RE = re.compile(r"[0-9][0-9A-Za-z :.+/-]*")
_PARALLEL_SINGLE_SERVER_CALLS = 4


@dataclass(frozen=True)
class RecoverSpec:
    """Everything `barman recover` needs. Values are validated when the argv is built."""

    server: str
    backup_id: str
    destination: str
    target_kind: TargetKind | None = None
    target_value: str | None = None  # unused for "immediate"
    target_tli: int | Literal["current", "latest"] | None = None
    target_action: TargetAction | None = None  # Barman's default is PostgreSQL's: pause
    target_inclusive: bool = True  # False -> --exclusive
    get_wal: bool | None = None  # None: the server's recovery_options decide
    standby_mode: bool = False
    remote_ssh_command: str | None = None  # e.g. "ssh postgres@pgserver"
    # Passed as one argv item; Barman adds the quotes itself (FINDINGS P11): never pre-quote.
    restore_command: str | None = None
    jobs: int | None = None


_ERROR_CLASSES: tuple[tuple[re.Pattern[str], type[BarmanError]], ...] = (
    (re.compile(r"Unknown server\b"), UnknownServer),
    (re.compile(r"Unknown backup\b|Unknown backup name\b"), UnknownBackup),
    # "Another backup process is running", "Another process in running on server x" (sic)...
    (re.compile(r"^Another .*\brunning\b"), BarmanLocked),
)


def classify_error(
    errors: Sequence[str], exceptions: Sequence[str], result: CommandResult
) -> BarmanError:
    """The typed error for Barman's own error / exception messages."""
    if exceptions:
        return BarmanCrashed(
            "\n".join(exceptions), returncode=result.returncode, argv=result.argv
        )
    message = "\n".join(errors)
    for pattern, cls in _ERROR_CLASSES:
        if any(pattern.search(e) for e in errors):
            return cls(message, returncode=result.returncode, argv=result.argv)
    return BarmanError(message, returncode=result.returncode, argv=result.argv)


def _tail(text: str, lines: int = 5) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _usage_error(result: CommandResult) -> BarmanError:
    # argparse: usage on stderr, the last line is "barman: error: ..."
    return BarmanError(
        _tail(result.stderr, 1) or "barman refused its arguments",
        returncode=result.returncode,
        argv=result.argv,
        kind="usage",
    )


def _with_argv(exc: BarmanOutputError, result: CommandResult) -> BarmanOutputError:
    return BarmanOutputError(exc.message, returncode=result.returncode, argv=result.argv)


def _plain_error(result: CommandResult, what: str) -> BarmanError:
    """Errors of commands run without -f json: `ERROR: ...` / `EXCEPTION: ...` lines."""
    errors: list[str] = []
    exceptions: list[str] = []
    for line in (result.stderr + "\n" + result.stdout).splitlines():
        if line.startswith("ERROR: "):
            errors.append(line.removeprefix("ERROR: "))
        elif line.startswith("EXCEPTION: "):
            exceptions.append(line.removeprefix("EXCEPTION: "))
    if errors or exceptions:
        return classify_error(errors, exceptions, result)
    detail = _tail(result.stderr) or _tail(result.stdout) or "no message"
    return BarmanError(
        f"barman {what} failed (exit code {result.returncode}): {detail}",
        returncode=result.returncode,
        argv=result.argv,
        kind="failed",
    )


def json_result(
    result: CommandResult, what: str, ok_codes: tuple[int, ...] = (0,)
) -> dict[str, Any]:
    """The JSON document of a `barman -f json` run, or the typed error Barman reported."""
    if result.returncode == 2 and not result.stdout.strip():
        raise _usage_error(result)
    try:
        doc = load_json(result.stdout, what)
        messages = parse_messages(doc, what)
    except BarmanOutputError as exc:
        if result.returncode != 0:
            raise _plain_error(result, what) from exc
        raise _with_argv(exc, result) from exc
    if messages.error or messages.exception:
        raise classify_error(messages.error, messages.exception, result)
    if result.returncode not in ok_codes:
        raise _plain_error(result, what)
    return doc


def plain_result(result: CommandResult, what: str) -> CommandResult:
    """The result of a console-format run, or the typed error from its ERROR:/EXCEPTION: lines."""
    if result.returncode == 2 and not result.stdout.strip():
        raise _usage_error(result)
    if result.returncode != 0:
        raise _plain_error(result, what)
    return result


class BarmanClient:
    """One Barman node, reached through `transport`."""

    def __init__(
        self,
        transport: Transport,
        *,
        barman: str = "barman",
        config_file: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.transport = transport
        self.barman = check_executable(barman)
        self.config_file = None if config_file is None else check_path(config_file)
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        self.timeout = timeout

    # --- argv -----------------------------------------------------------------------------------

    def argv(self, *args: str, json: bool = True) -> list[str]:
        """[barman, (-c FILE), (-f json), *args]."""
        out = [self.barman]
        if self.config_file:
            out += ["-c", self.config_file]
        if json:
            out += ["-f", "json"]
        out += args
        return out

    @staticmethod
    def _server_args(servers: Sequence[str] | None) -> list[str]:
        if servers is None:
            return ["all"]
        if isinstance(servers, str):
            raise UnsafeValue("servers must be a list of server names, not one string")
        names = [check_server_name(s) for s in servers]
        if not names:
            raise UnsafeValue("no server names given (use None for all servers)")
        return list(dict.fromkeys(names))

    # --- running --------------------------------------------------------------------------------

    async def _run(self, args: Sequence[str], *, json: bool) -> CommandResult:
        return await self.transport.run(self.argv(*args, json=json), timeout=self.timeout)

    async def _run_json(
        self,
        what: str,
        args: Sequence[str],
        parser: Callable[..., T],
        *extra: Any,
        ok_codes: tuple[int, ...] = (0,),
    ) -> T:
        result = await self._run(args, json=True)
        doc = json_result(result, what, ok_codes)
        try:
            return parser(doc, *extra)
        except BarmanOutputError as exc:
            raise _with_argv(exc, result) from exc

    async def _run_plain(self, what: str, args: Sequence[str]) -> CommandResult:
        return plain_result(await self._run(args, json=False), what)

    # --- reports --------------------------------------------------------------------------------

    async def version(self) -> str:
        result = await self._run_plain("--version", ["--version"])
        words = result.stdout.split()
        if not words or not re.fullmatch(r"\d+(\.\d+)+\S*", words[0]):
            raise BarmanOutputError(
                f"barman --version printed {result.stdout.strip()[:80]!r}",
                returncode=result.returncode,
                argv=result.argv,
            )
        return words[0]

    async def list_servers(self) -> dict[str, str]:
        """Server name -> description (a passive node's description ends with " (Passive)")."""
        return await self._run_json("list-servers", ["list-servers"], parse_list_servers)

    async def show_servers(self, servers: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        args = ["show-servers", *self._server_args(servers)]
        return await self._run_json("show-servers", args, parse_show_servers)

    async def status(self, servers: Sequence[str] | None = None) -> dict[str, BarmanStatus]:
        args = ["status", *self._server_args(servers)]
        return await self._run_json("status", args, parse_status)

    async def check(
        self, servers: Sequence[str] | None = None
    ) -> dict[str, tuple[BarmanCheck, ...]]:
        """Every check of every server; a FAILED check is data (Barman exits 1), not an error."""
        args = ["check", *self._server_args(servers)]
        return await self._run_json("check", args, parse_check, ok_codes=(0, 1))

    async def check_nagios(self, servers: Sequence[str] | None = None) -> NagiosResult:
        """`barman check --nagios` (plain; Barman exits 0/1/2/3 like a Nagios plugin)."""
        result = await self._run(["check", "--nagios", *self._server_args(servers)], json=False)
        try:
            return parse_nagios(result.stdout)
        except BarmanOutputError as exc:
            if result.returncode != 0:
                raise _plain_error(result, "check --nagios") from None
            raise _with_argv(exc, result) from exc

    async def list_backups(
        self, servers: Sequence[str] | None = None
    ) -> dict[str, tuple[Backup, ...]]:
        args = ["list-backups", *self._server_args(servers)]
        return await self._run_json("list-backups", args, parse_list_backups)

    async def show_backup(self, server: str, backup_id: str) -> BackupDetail:
        server = check_server_name(server)
        args = ["show-backup", server, check_backup_id(backup_id)]
        return await self._run_json("show-backup", args, parse_show_backup, server)

    async def replication_status(
        self, servers: Sequence[str] | None = None
    ) -> dict[str, ReplicationStatus]:
        """Streaming clients per server; passive servers are omitted."""
        args = ["replication-status", *self._server_args(servers)]
        return await self._run_json("replication-status", args, parse_replication_status)

    async def list_processes(
        self, servers: Sequence[str] | None = None
    ) -> dict[str, tuple[BarmanProcess, ...]]:
        """Barman's subprocesses per server. list-processes takes ONE server, so this runs one
        barman per server (a few at a time), after list-servers when servers is None."""
        names = list(await self.list_servers()) if servers is None else self._server_args(servers)
        limit = asyncio.Semaphore(_PARALLEL_SINGLE_SERVER_CALLS)

        async def one(name: str) -> dict[str, tuple[BarmanProcess, ...]]:
            async with limit:
                args = ["list-processes", name]
                return await self._run_json("list-processes", args, parse_list_processes)

        out: dict[str, tuple[BarmanProcess, ...]] = {}
        for part in await asyncio.gather(*(one(n) for n in names)):
            out.update(part)
        return out

    async def sync_info(
        self, server: str, last_wal: str | None = None, last_position: int | None = None
    ) -> SyncInfo:
        """What a passive node would copy from this (primary) node; run without -f json."""
        args = ["sync-info", check_server_name(server)]
        if (last_wal is None) != (last_position is None):
            raise UnsafeValue("sync-info needs both last_wal and last_position, or neither")
        if last_wal is not None and last_position is not None:
            if isinstance(last_position, bool) or not isinstance(last_position, int) or (
                last_position < 0
            ):
                raise UnsafeValue(f"last_position must be a byte offset, not {last_position!r}")
            args += [check_wal_name(last_wal), str(last_position)]
        result = await self._run_plain("sync-info", args)
        try:
            return parse_sync_info(result.stdout, server)
        except BarmanOutputError as exc:
            raise _with_argv(exc, result) from exc

    async def diagnose(self) -> dict[str, Any]:
        """`barman diagnose`, plain (with -f json Barman double-encodes it)."""
        result = await self._run_plain("diagnose", ["diagnose"])
        try:
            return parse_diagnose(result.stdout)
        except BarmanOutputError as exc:
            raise _with_argv(exc, result) from exc

    # --- operations: argv only ------------------------------------------------------------------

    def backup_argv(
        self,
        server: str,
        *,
        wait: bool = False,
        immediate_checkpoint: bool | None = None,
        name: str | None = None,
        jobs: int | None = None,
    ) -> list[str]:
        args = ["backup"]
        if immediate_checkpoint is not None:
            args.append(
                "--immediate-checkpoint" if immediate_checkpoint else "--no-immediate-checkpoint"
            )
        if wait:
            args.append("--wait")
        if name is not None:
            args += ["--name", check_backup_name(name)]
        if jobs is not None:
            args += ["--jobs", str(check_positive_int(jobs, "jobs", maximum=256))]
        return self.argv(*args, check_server_name(server), json=False)

    def switch_wal_argv(
        self,
        server: str,
        *,
        force: bool = True,
        archive: bool = True,
        archive_timeout: int | None = None,
    ) -> list[str]:
        args = ["switch-wal"]
        if force:
            args.append("--force")
        if archive:
            args.append("--archive")
        if archive_timeout is not None:
            if not archive:
                raise UnsafeValue("archive_timeout only applies with archive=True")
            timeout = check_positive_int(archive_timeout, "archive timeout", maximum=86400)
            args += ["--archive-timeout", str(timeout)]
        return self.argv(*args, check_server_name(server), json=False)

    def cron_argv(self) -> list[str]:
        return self.argv("cron", json=False)

    def keep_argv(
        self,
        server: str,
        backup_id: str,
        *,
        target: str | None = None,
        release: bool = False,
    ) -> list[str]:
        args = ["keep"]
        if release and target is not None:
            raise UnsafeValue("keep: choose either a target or release, not both")
        if not release and target is None:
            raise UnsafeValue("keep: a target (full or standalone) is needed to keep a backup")
        if release:
            args.append("--release")
        if target is not None:
            if target not in ("full", "standalone"):
                raise UnsafeValue(f"keep target must be 'full' or 'standalone', not {target!r}")
            args += ["--target", target]
        return self.argv(
            *args, check_server_name(server), check_backup_id(backup_id), json=False
        )

    def delete_argv(self, server: str, backup_id: str) -> list[str]:
        return self.argv(
            "delete", check_server_name(server), check_backup_id(backup_id), json=False
        )

    def recover_argv(
        self, spec: RecoverSpec, capabilities: Capabilities | None = None
    ) -> list[str]:
        """`barman restore` (3.12+) or `barman recover` for the node's Barman (CAPABILITIES);
        `recover` when the version is unknown, which every version accepts (an alias from
        3.12 on)."""
        verb = capabilities.restore_verb if capabilities is not None else "recover"
        args = [verb, *_recover_target_args(spec)]
        if spec.get_wal is not None:
            args.append("--get-wal" if spec.get_wal else "--no-get-wal")
        if spec.standby_mode:
            args.append("--standby-mode")
        if spec.remote_ssh_command is not None:
            args += ["--remote-ssh-command",
                     check_text(spec.remote_ssh_command, "remote ssh command")]
        if spec.restore_command is not None:
            if spec.get_wal is not True:
                raise UnsafeValue(
                    "a restore command needs get_wal=True (Barman ignores it otherwise)"
                )
            command = check_text(spec.restore_command, "restore command")
            if command[:1] in "'\"" or command[-1:] in "'\"":
                raise UnsafeValue(
                    "restore command must not be wrapped in quotes: Barman adds its own"
                )
            if capabilities is None or capabilities.has(Feature.CUSTOM_RESTORE_COMMAND):
                args += ["--restore-command", command]
            # else: an older Barman has no such option; the recovery run writes the command
            # into the restored configuration afterwards (core.restored_fix)
        if spec.jobs is not None:
            args += ["--jobs", str(check_positive_int(spec.jobs, "jobs", maximum=256))]
        return self.argv(
            *args,
            check_server_name(spec.server),
            check_backup_id(spec.backup_id),
            check_path(spec.destination),
            json=False,
        )


def _recover_target_args(spec: RecoverSpec) -> list[str]:
    args: list[str] = []
    kind, value = spec.target_kind, spec.target_value
    if kind is None:
        if value is not None:
            raise UnsafeValue("a recovery target value needs a target kind")
    elif kind == "immediate":
        if value is not None:
            raise UnsafeValue("target 'immediate' takes no value")
        args.append("--target-immediate")
    elif kind in _TARGET_FLAGS:
        if value is None:
            raise UnsafeValue(f"recovery target {kind} needs a value")
        value = check_text(value, f"target {kind}")
        if kind == "lsn" and not _LSN_RE.fullmatch(value):
            raise UnsafeValue(f"target lsn {value!r} is not an LSN like 0/7000028")
        if kind == "xid" and not (value.isdigit() and len(value) <= 20):
            raise UnsafeValue(f"target xid {value!r} is not a transaction id")
        if kind == "time" and not _TIME_RE.fullmatch(value):
            raise UnsafeValue(f"target time {value!r} is not a time like 2026-11-30 17:19:51")
        args += [_TARGET_FLAGS[kind], value]
    else:
        raise UnsafeValue(f"unknown recovery target kind {kind!r}")
    if not spec.target_inclusive:
        if kind in (None, "immediate", "name"):
            raise UnsafeValue("an exclusive target needs a time, lsn or xid target")
        args.append("--exclusive")
    tli = spec.target_tli
    if tli is not None:
        if tli in ("current", "latest"):
            args += ["--target-tli", str(tli)]
        else:
            args += ["--target-tli", str(check_positive_int(tli, "target timeline"))]  # type: ignore[arg-type]
    if spec.target_action is not None:
        if spec.target_action not in ("pause", "promote", "shutdown"):
            raise UnsafeValue(f"target action must be pause, promote or shutdown, "
                              f"not {spec.target_action!r}")
        if kind is None:
            raise UnsafeValue("a target action needs a recovery target")
        args += ["--target-action", spec.target_action]
    return args
