"""Pure recovery planning: the target, its validation against the window, the backup to use,
the destination, the options and the exact `barman recover` command. No I/O here.

The post-recovery checklist lives in `recovery_checklist` and is re-exported from here.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from dr_console.core.barman import BarmanClient, RecoverSpec
from dr_console.core.barman_versions import Capabilities, Feature
from dr_console.core.recovery_checklist import ChecklistItem, post_recovery_checklist
from dr_console.core.validation import UnsafeValue, check_path
from dr_console.core.wal import DEFAULT_SEGMENT_SIZE, format_lsn, parse_lsn, parse_wal_name
from dr_console.models import Backup, RecoveryWindow

__all__ = [
    "ChecklistItem",
    "Destination",
    "RecoveryOptions",
    "RecoveryPlan",
    "RecoveryPlanError",
    "RecoveryTarget",
    "build_plan",
    "check_backup_wal",
    "choose_backup",
    "parse_destination",
    "parse_target",
    "post_recovery_checklist",
    "validate_target",
]

TargetKind = Literal["latest", "immediate", "time", "lsn", "xid", "name"]
TargetAction = Literal["promote", "pause", "shutdown"]
Timeline = int | Literal["current", "latest"]

TARGET_SYNTAX = (
    "latest, immediate, time=2026-11-30 17:20:00+00, lsn=0/C000000, xid=1234 or "
    "name=RESTORE_POINT, optionally followed by ' tli=N' (N, current or latest)"
)
_LSN_RE = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:+-]{0,62}")
_TLI_RE = re.compile(r"^(?P<main>.*?)[\s,]+tli=(?P<tli>\S*)$", re.DOTALL)
_HOST_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*|\[[0-9A-Fa-f:.]+\]")
_USER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_SAFE_PATH_RE = re.compile(r"/[A-Za-z0-9_./+-]*")
_XID_MAX = 2**64 - 1


class RecoveryPlanError(ValueError):
    """A recovery request was refused; the message says why and what to do instead."""


# --- the target --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecoveryTarget:
    kind: TargetKind
    time: datetime | None = None  # always timezone-aware
    lsn: int | None = None
    xid: int | None = None
    name: str | None = None
    tli: Timeline | None = None

    @property
    def value(self) -> str | None:
        """The value as Barman and PostgreSQL take it (None for latest and immediate)."""
        if self.time is not None:
            return self.time.isoformat(sep=" ")
        if self.lsn is not None:
            return format_lsn(self.lsn)
        if self.xid is not None:
            return str(self.xid)
        return self.name

    def describe(self) -> str:
        text = self.kind if self.value is None else f"{self.kind}={self.value}"
        return text if self.tli is None else f"{text} tli={self.tli}"


def parse_target(text: str) -> RecoveryTarget:
    """Parse `latest`, `immediate`, `time=…`, `lsn=…`, `xid=…`, `name=…` (+ ` tli=…`)."""
    if not isinstance(text, str) or not text.strip():
        raise RecoveryPlanError(f"no recovery target given: use {TARGET_SYNTAX}")
    if not text.isprintable():
        raise RecoveryPlanError("the recovery target contains control characters")
    main, tli = text.strip(), None
    match = _TLI_RE.match(main)
    if match:
        main, tli = match["main"].strip(), _parse_tli(match["tli"])
    if main in ("latest", "immediate"):
        if tli is not None and main == "immediate":
            raise RecoveryPlanError(
                "target 'immediate' ends at the backup's end: tli= does not apply"
            )
        return RecoveryTarget(kind=main, tli=tli)  # type: ignore[arg-type]
    kind, sep, value = main.partition("=")
    kind, value = kind.strip().lower(), value.strip()
    if not sep or kind not in ("time", "lsn", "xid", "name"):
        raise RecoveryPlanError(f"cannot read the recovery target {text!r}: use {TARGET_SYNTAX}")
    if not value:
        raise RecoveryPlanError(f"target {kind}= needs a value: use {TARGET_SYNTAX}")
    if kind == "time":
        return RecoveryTarget(kind="time", time=_parse_time(value), tli=tli)
    if kind == "lsn":
        if not _LSN_RE.fullmatch(value):
            raise RecoveryPlanError(f"target lsn {value!r} is not an LSN like 0/C000000")
        return RecoveryTarget(kind="lsn", lsn=parse_lsn(value), tli=tli)
    if kind == "xid":
        if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= _XID_MAX:
            raise RecoveryPlanError(f"target xid {value!r} is not a transaction id (a number)")
        return RecoveryTarget(kind="xid", xid=int(value), tli=tli)
    if not _NAME_RE.fullmatch(value):
        raise RecoveryPlanError(
            f"restore point name {value!r} may only hold letters, digits and _.:+- "
            "(at most 63, not starting with a punctuation sign)"
        )
    return RecoveryTarget(kind="name", name=value, tli=tli)


def _parse_tli(text: str) -> Timeline:
    if text in ("current", "latest"):
        return text  # type: ignore[return-value]
    if text.isascii() and text.isdigit() and 1 <= int(text) <= 0xFFFFFFFF:
        return int(text)
    raise RecoveryPlanError(f"tli={text!r}: a timeline is a number, 'current' or 'latest'")


def _parse_time(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise RecoveryPlanError(
            f"target time {value!r} is not an ISO-8601 time like 2026-11-30 17:20:00+00"
        ) from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise RecoveryPlanError(
            f"target time {value!r} has no time zone: add it, e.g. '{value}+00' for UTC or "
            f"'{value}+01' for UTC+1 (the console never guesses the zone)"
        )
    return when


# --- validation against what the node holds ---------------------------------------------------


def _done(backups: Sequence[Backup]) -> list[Backup]:
    """DONE backups, newest first (by end time, then id)."""
    done = [b for b in backups if b.is_done]
    return sorted(
        done,
        key=lambda b: (b.end_time.timestamp() if b.end_time else float("-inf"), b.backup_id),
        reverse=True,
    )


def _window_text(window: RecoveryWindow) -> str:
    begin = window.begin.isoformat(sep=" ") if window.begin else "?"
    end = window.end.isoformat(sep=" ") if window.end else "?"
    return f"recoverable window on this node: {begin} → {end}"


def _wal_end_lsn(wal: str | None, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int | None:
    """The LSN just after the given WAL segment (None when unknown)."""
    parsed = parse_wal_name(wal) if wal else None
    if parsed is None:
        return None
    _, combined = parsed
    log, seg = combined >> 32, combined & 0xFFFFFFFF
    return (log << 32) + (seg + 1) * segment_size


def _wal_start_lsn(wal: str | None, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int | None:
    end = _wal_end_lsn(wal, segment_size)
    return None if end is None else end - segment_size


def validate_target(
    target: RecoveryTarget,
    window: RecoveryWindow | None,
    backups: Sequence[Backup],
    *,
    last_wal: str | None = None,
) -> list[str]:
    """Why this target cannot be recovered from this node (empty list: it can)."""
    done = _done(backups)
    if not done:
        return ["there is no DONE backup on this node: nothing can be recovered"]
    problems: list[str] = []
    if target.kind == "time" and target.time is not None and window is not None:
        if window.begin is not None and target.time < window.begin:
            problems.append(
                f"target time {target.value} is before the earliest consistent point "
                f"(the end of the oldest backup, {window.begin.isoformat(sep=' ')}); "
                + _window_text(window)
            )
        if window.end is not None and target.time > window.end:
            problems.append(
                f"target time {target.value} is after the last WAL archived on this node "
                f"({window.end.isoformat(sep=' ')}): PostgreSQL would stop before reaching it; "
                "use 'latest' or a time inside the window; " + _window_text(window)
            )
    if target.kind == "lsn" and target.lsn is not None:
        oldest = done[-1]
        earliest = _wal_start_lsn(oldest.end_wal)
        if earliest is not None and target.lsn < earliest:
            problems.append(
                f"target lsn {target.value} is before the end of the oldest backup "
                f"{oldest.backup_id} (WAL {oldest.end_wal}): nothing consistent exists there"
            )
        last = _wal_end_lsn(last_wal)
        if last is not None and target.lsn >= last:
            problems.append(
                f"target lsn {target.value} is after the last WAL on this node ({last_wal}, "
                f"ends at {format_lsn(last)}): use 'latest' or an earlier LSN"
            )
    if isinstance(target.tli, int):
        timelines = {b.timeline for b in done if b.timeline is not None}
        if timelines and target.tli < min(timelines):
            problems.append(
                f"timeline {target.tli} is older than every backup's timeline "
                f"({', '.join(str(t) for t in sorted(timelines))})"
            )
    return problems


def check_backup_wal(backup: Backup, last_wal: str | None) -> str | None:
    """Why the node cannot make `backup` consistent yet (None: it can, or it is unknown).

    A passive node may list a backup as DONE before `barman cron` has copied the WAL that ends
    it (FINDINGS P14); recovering then fails at start-up with "WAL ends before end of online
    backup"."""
    if backup.end_wal is None or last_wal is None:
        return None
    end, last = parse_wal_name(backup.end_wal), parse_wal_name(last_wal)
    if end is None or last is None or end[1] <= last[1]:
        return None
    return (
        f"the WAL that makes backup {backup.backup_id} consistent ({backup.end_wal}) has not "
        f"reached this node yet (its last WAL is {last_wal}); wait for the next barman cron "
        "or recover from the primary node"
    )


def _usable_for(target: RecoveryTarget, backup: Backup) -> str | None:
    """Why `backup` cannot serve `target` (None: it can)."""
    if not backup.is_done:
        return f"backup {backup.backup_id} is {backup.status}, not DONE"
    if target.kind == "time" and target.time is not None:
        if backup.end_time is None:
            return f"backup {backup.backup_id} has no known end time"
        if backup.end_time > target.time:
            return (
                f"backup {backup.backup_id} ends at {backup.end_time.isoformat(sep=' ')}, "
                f"after the target {target.value}"
            )
    if target.kind == "lsn" and target.lsn is not None:
        end = _wal_end_lsn(backup.end_wal)
        if end is None:
            return f"backup {backup.backup_id} has no known end WAL"
        if end > target.lsn:
            return (
                f"backup {backup.backup_id} ends in WAL {backup.end_wal}, which is not entirely "
                f"before the target lsn {target.value}"
            )
    return None


def choose_backup(
    target: RecoveryTarget, backups: Sequence[Backup], pick: str | None = None
) -> tuple[Backup, str]:
    """The backup to recover from and why: the newest DONE one that ends before the target.

    `pick` is the operator's own choice (a backup id); it is validated the same way.
    """
    done = _done(backups)
    if pick is not None:
        chosen = next((b for b in backups if b.backup_id == pick), None)
        if chosen is None:
            raise RecoveryPlanError(f"there is no backup {pick} on this node")
        reason = _usable_for(target, chosen)
        if reason is not None:
            raise RecoveryPlanError(f"cannot recover {target.describe()} from it: {reason}")
        return chosen, f"chosen by the operator; it ends before the target {target.describe()}"
    if not done:
        raise RecoveryPlanError("there is no DONE backup on this node: nothing can be recovered")
    for backup in done:
        if _usable_for(target, backup) is None:
            break
    else:
        oldest = done[-1]
        raise RecoveryPlanError(
            f"no DONE backup ends before the target {target.describe()}: "
            f"{_usable_for(target, oldest)}"
        )
    ends = backup.end_time.isoformat(sep=" ") if backup.end_time else "?"
    if target.kind in ("time", "lsn"):
        why = f"the newest DONE backup that ends before the target (ends {ends})"
    elif target.kind in ("xid", "name"):
        why = (
            f"the newest DONE backup (ends {ends}); the console cannot date a {target.kind} "
            "target: pick an older backup if it was created before this one ended"
        )
    else:
        why = f"the newest DONE backup (ends {ends})"
    return backup, why


# --- destination and options ------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    path: str
    host: str | None = None  # None: on the Barman node itself
    user: str | None = None

    @property
    def remote(self) -> bool:
        return self.host is not None

    @property
    def ssh_target(self) -> str | None:
        if self.host is None:
            return None
        return f"{self.user}@{self.host}" if self.user else self.host

    def display(self) -> str:
        return self.path if self.host is None else f"{self.ssh_target}:{self.path}"


def parse_destination(text: str) -> Destination:
    """`PATH` (on the Barman node) or `[USER@]HOST:PATH` (recovered there over ssh)."""
    if not isinstance(text, str) or not text.strip():
        raise RecoveryPlanError("no destination given: use PATH or [USER@]HOST:PATH")
    text = text.strip()
    host: str | None = None
    user: str | None = None
    path = text
    if not text.startswith("/"):
        where, sep, path = text.rpartition(":")
        if not sep or not where:
            raise RecoveryPlanError(
                f"destination {text!r} is neither an absolute path nor [USER@]HOST:PATH"
            )
        user_part, at, host_part = where.rpartition("@")
        host = host_part
        if at:
            if not _USER_RE.fullmatch(user_part):
                raise RecoveryPlanError(f"destination user {user_part!r} is not a user name")
            user = user_part
        if not _HOST_RE.fullmatch(host):
            raise RecoveryPlanError(f"destination host {host!r} is not a host name or address")
    try:
        check_path(path)
    except UnsafeValue as exc:
        raise RecoveryPlanError(f"destination: {exc}") from None
    if not _SAFE_PATH_RE.fullmatch(path) or "/../" in path + "/" or path.rstrip("/") == "":
        raise RecoveryPlanError(
            f"destination path {path!r} must be an absolute path of letters, digits and _./+- "
            "(no '..', not /)"
        )
    return Destination(path=path.rstrip("/") or "/", host=host, user=user)


@dataclass(frozen=True)
class RestoreHost:
    """The Barman node as the DESTINATION reaches it over ssh (for barman-wal-restore)."""

    host: str
    user: str | None = None
    port: int | None = None


@dataclass(frozen=True)
class RecoveryOptions:
    get_wal: bool = True  # False: Barman copies the WAL files into the destination
    target_action: TargetAction | None = None
    standby_mode: bool = False
    jobs: int | None = None
    restore_host: RestoreHost | None = None  # needed for a remote recovery with get_wal


@dataclass(frozen=True)
class RecoveryPlan:
    node: str
    server: str
    backup: Backup
    backup_why: str
    target: RecoveryTarget
    destination: Destination
    options: RecoveryOptions
    spec: RecoverSpec
    argv: tuple[str, ...]
    warnings: tuple[str, ...] = field(default=())
    capabilities: Capabilities | None = None  # the node's Barman, which wrote argv

    @property
    def command_line(self) -> str:
        """The exact command, shell-quoted, for review."""
        return shlex.join(self.argv)

    def summary_lines(self) -> list[str]:
        opts = self.options
        lines = [
            f"server       {self.server} on node {self.node}",
            f"target       {self.target.describe()}",
            f"backup       {self.backup.backup_id}: {self.backup_why}",
            f"destination  {self.destination.display()}",
            "WAL          "
            + ("get-wal (fetched on demand by restore_command)" if opts.get_wal else "copied"),
            f"target action {opts.target_action or '(PostgreSQL default: pause)'}",
            f"standby mode {'yes' if opts.standby_mode else 'no'}",
        ]
        if opts.jobs:
            lines.append(f"parallel jobs {opts.jobs}")
        if self.spec.restore_command:
            lines.append(f"restore_command {self.spec.restore_command}")
        lines.append(f"command      {self.command_line}")
        lines += [f"warning      {w}" for w in self.warnings]
        return lines


def restore_command_for(server: str, restore_host: RestoreHost) -> str:
    """barman-wal-restore naming the Barman host as the destination reaches it (FINDINGS P11)."""
    if not _HOST_RE.fullmatch(restore_host.host):
        raise RecoveryPlanError(f"Barman host {restore_host.host!r} is not a host name")
    if restore_host.host in ("localhost", "127.0.0.1", "::1", "[::1]"):
        raise RecoveryPlanError(
            f"restore_command would name {restore_host.host!r}: from the destination that is "
            "the destination itself, not the Barman node"
        )
    parts = ["barman-wal-restore", "-P"]
    if restore_host.user:
        if not _USER_RE.fullmatch(restore_host.user):
            raise RecoveryPlanError(f"Barman user {restore_host.user!r} is not a user name")
        parts += ["-U", restore_host.user]
    if restore_host.port:
        parts += ["--port", str(restore_host.port)]
    return " ".join([*parts, restore_host.host, server, "%f", "%p"])


def build_plan(
    client: BarmanClient,
    *,
    node: str,
    server: str,
    backup: Backup,
    backup_why: str,
    target: RecoveryTarget,
    destination: Destination,
    options: RecoveryOptions,
    capabilities: Capabilities | None = None,
) -> RecoveryPlan:
    """The whole plan and the exact argv; refuses inconsistent options with RecoveryPlanError.
    `capabilities` (the node's Barman) choose `restore` or `recover`."""
    warnings: list[str] = []
    kind = None if target.kind == "latest" else target.kind
    action = options.target_action
    if kind is None and action is not None:
        raise RecoveryPlanError(
            f"--target-action {action} needs a target: a 'latest' recovery replays all WAL "
            "and then promotes by itself"
        )
    if kind is not None and action is None and not options.standby_mode:
        warnings.append(
            "no target action: PostgreSQL PAUSES at the target and stays read-only "
            "in recovery until pg_wal_replay_resume(); use --target-action promote for an "
            "unattended recovery"
        )
    if action == "shutdown":
        warnings.append("target action shutdown: PostgreSQL stops once the target is reached")
    if options.standby_mode:
        warnings.append("standby mode: the restored server stays a standby and never promotes")
    restore_command = None
    remote_ssh = None
    if destination.remote:
        remote_ssh = f"ssh {destination.ssh_target}"
        if options.get_wal:
            if options.restore_host is None:
                raise RecoveryPlanError(
                    "a remote recovery with get-wal needs the Barman host as the destination "
                    "reaches it (Barman's own default names 'localhost' here)"
                )
            restore_command = restore_command_for(server, options.restore_host)
    if capabilities is not None and restore_command is not None and not capabilities.has(
        Feature.CUSTOM_RESTORE_COMMAND
    ):
        warnings.append(
            f"Barman {capabilities.version} cannot be given a restore_command (that needs "
            f"Barman >= {Feature.CUSTOM_RESTORE_COMMAND.first}): drconsole writes "
            f"'{restore_command}' into the restored postgresql.auto.conf after the recovery"
        )
    elif capabilities is not None and options.get_wal and not destination.remote and (
        capabilities.local_restore_command_uses_sudo
    ):
        warnings.append(
            f"Barman {capabilities.version} writes restore_command with 'sudo -u <its user>': "
            "drconsole removes the sudo after the recovery, so the restored server must run as "
            "Barman's OS user (as with Barman 3.16 and later)"
        )
    tli = target.tli
    spec = RecoverSpec(
        server=server,
        backup_id=backup.backup_id,
        destination=destination.path,
        target_kind=kind,
        target_value=target.value if kind not in (None, "immediate") else None,
        target_tli=tli,
        target_action=action,
        get_wal=options.get_wal,
        standby_mode=options.standby_mode,
        remote_ssh_command=remote_ssh,
        restore_command=restore_command,
        jobs=options.jobs,
    )
    try:
        argv = tuple(client.recover_argv(spec, capabilities))
    except UnsafeValue as exc:
        raise RecoveryPlanError(str(exc)) from None
    return RecoveryPlan(
        node=node,
        server=server,
        backup=backup,
        backup_why=backup_why,
        target=target,
        destination=destination,
        options=options,
        spec=spec,
        argv=argv,
        warnings=tuple(warnings),
        capabilities=capabilities,
    )
