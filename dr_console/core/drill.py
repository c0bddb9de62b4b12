"""The DR drill: recover to a scratch directory on the Barman node, start the restored server
on a spare loopback port with archiving off, wait for replay, verify, stop, remove, and report
the measured RTO (recover time + replay time) and the recovery point reached.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from dr_console.core.barman import BarmanClient
from dr_console.core.drill_leftovers import clear_leftovers, deadline_argv
from dr_console.core.drill_verify import (
    Verification,
    VerifyRefused,
    check_verify_sql,
    run_verification,
)
from dr_console.core.jobs import JobManager
from dr_console.core.journal import Journal
from dr_console.core.preflight import (
    PreflightRefused,
    RefusalKind,
    backup_need_bytes,
    preflight,
)
from dr_console.core.recovery import (
    Destination,
    RecoveryOptions,
    RecoveryPlanError,
    RecoveryTarget,
    TargetAction,
    build_plan,
    post_recovery_checklist,
    validate_target,
)
from dr_console.core.recovery_run import run_recover
from dr_console.core.recovery_source import RecoverySource, choose_backup_on_node
from dr_console.core.restored import (
    RestoredError,
    RestoredInstance,
    check_safe_path,
    read_restored_conf,
    remove_tree,
    start_on_a_free_port,
)
from dr_console.core.transport_base import Transport
from dr_console.models import Health

DRILL_PORTS = range(55432, 55442)
DRILL_JOURNAL = "drills.jsonl"
DEFAULT_VERIFY_SQL = "select 1"
_DRILL_DIR_RE = re.compile(
    r"/[A-Za-z0-9_./+-]*/\.drconsole/drills/[A-Za-z0-9_.-]+-\d{8}T\d{6}-[0-9a-f]{6}"
)

# The unix socket path must stay under 108 bytes: a short private directory in /tmp.
_SOCKET_DIR_RE = re.compile(r"/tmp/drconsole\.[A-Za-z0-9]{6}")


class DrillError(Exception):
    """The drill could not run; the message says which step failed and why."""


@dataclass(frozen=True)
class DrillResult:
    server: str
    node: str
    backup_id: str
    target: str
    destination: str
    port: int
    started_at: str
    recover_seconds: float
    replay_seconds: float
    rto_seconds: float
    recovery_point: str  # "time / LSN" reached
    recovery_time: str | None
    recovery_lsn: str | None
    timeline: int | None
    verified: bool
    verify_sql: str
    verify_result: str
    checklist: list[dict[str, str]] = field(default_factory=list)
    job_id: str | None = None
    cleaned_up: bool = True
    leftovers: list[str] = field(default_factory=list)  # what earlier drills left, and was done

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def report_lines(self, width: int, with_backup: bool = True) -> list[str]:
        """The result as "label  value" lines (labels padded to WIDTH), then the checklist items
        that are not OK; what the headless report and the walkthrough both show."""
        rows = [
            ("RTO", f"{self.rto_seconds:.1f} s (recover {self.recover_seconds:.1f} s"
                    f" + replay {self.replay_seconds:.1f} s)"),
            ("recovery point", f"{self.recovery_point} (timeline {self.timeline})"),
            ("backup", self.backup_id),
            ("verified", f"{'yes' if self.verified else 'NO'}: {self.verify_sql} -> "
                         f"{self.verify_result}"),
            ("cleaned up", "yes" if self.cleaned_up else "NO"),
            *(("earlier drill", line) for line in self.leftovers),
        ]
        lines = [f"{label:<{width}}{value}" for label, value in rows
                 if with_backup or label != "backup"]
        lines += [f"{item['status']:<8} {item['key']}: {item['detail']}"
                  for item in self.checklist if item["status"] != "OK"]
        return lines


async def _home(transport: Transport, timeout: float) -> str:
    result = await transport.run(["sh", "-c", 'printf %s "$HOME"'], timeout=timeout)
    home = result.stdout.strip()
    if result.returncode != 0 or not home.startswith("/"):
        raise DrillError(f"cannot read $HOME on {transport.name}")
    return check_safe_path(home.rstrip("/"), "home directory")


async def server_settings(client: BarmanClient, server: str) -> dict[str, Any]:
    """Barman's settings for the server (path_prefix, conninfo…); empty when unavailable."""
    with contextlib.suppress(Exception):
        return (await client.show_servers([server])).get(server, {})
    return {}


def conninfo_user(settings: dict[str, Any]) -> str | None:
    conninfo = settings.get("conninfo")
    match = re.search(r"(?:^|\s)user=([A-Za-z0-9_.-]+)", conninfo or "")
    return match.group(1) if match else None


async def find_bindir(
    settings: dict[str, Any], transport: Transport, pg_version: int | None, timeout: float
) -> str:
    """PostgreSQL's binaries on the node: Barman's path_prefix, else Debian's layout."""
    candidates: list[str] = []
    prefix = settings.get("path_prefix")
    if isinstance(prefix, str):
        candidates += [p for p in prefix.split(":") if p.startswith("/")]
    if pg_version:
        major = pg_version // 10000 if pg_version >= 100000 else pg_version // 100
        candidates.append(f"/usr/lib/postgresql/{major}/bin")
    for candidate in candidates:
        with contextlib.suppress(RestoredError):
            check_safe_path(candidate, "bindir")
            result = await transport.run(["test", "-x", f"{candidate}/pg_ctl"], timeout=timeout)
            if result.returncode == 0:
                return candidate
    raise DrillError(
        f"no pg_ctl found on {transport.name} (looked in {', '.join(candidates) or 'nothing'}): "
        "set path_prefix in the Barman server's configuration"
    )


async def run_drill(
    *,
    source: RecoverySource,
    server: str,
    transport: Transport,
    client: BarmanClient,
    jobs: JobManager,
    target: RecoveryTarget,
    target_action: TargetAction | None = None,
    verify_sql: str | None = None,
    timeout: float = 900.0,
    command_timeout: float = 60.0,
    journal_dir: str | None = None,
    log: Callable[[str], None] = lambda _line: None,
) -> DrillResult:
    node = source.node.name
    problems = validate_target(target, source.window, source.backups, last_wal=source.last_wal)
    if problems:
        raise RecoveryPlanError("; ".join(problems))
    backup, why = await choose_backup_on_node(client, source, server, target)
    if target_action == "shutdown":
        raise RecoveryPlanError(
            "a drill cannot use --target-action shutdown: it must query the restored server"
        )
    if target.kind != "latest" and target_action is None:
        target_action = "promote"  # a drill must end by itself (P12)
    try:
        sql = check_verify_sql(verify_sql or DEFAULT_VERIFY_SQL)
    except VerifyRefused as exc:
        raise RecoveryPlanError(str(exc)) from None
    if target_action == "pause" and verify_sql:
        raise RecoveryPlanError(
            "a drill with a verification query cannot use --target-action pause: the query "
            "runs as a role without superuser rights that the drill creates in the promoted "
            "copy, and a copy paused in recovery is read-only"
        )
    started_at = datetime.now(UTC)
    stamp = f"{started_at:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    root = f"{await _home(transport, command_timeout)}/.drconsole/drills/{server}-{stamp}"
    if not _DRILL_DIR_RE.fullmatch(root):
        raise DrillError(f"scratch directory {root!r} has an unexpected form")
    data_dir = f"{root}/data"
    log(f"drill of {server} on {node}: backup {backup.backup_id} ({why}), scratch {root}")

    detail = None
    with contextlib.suppress(Exception):
        detail = await client.show_backup(server, backup.backup_id)
    pg_version = None
    if detail is not None and detail.postgresql_version and detail.postgresql_version.isdigit():
        pg_version = int(detail.postgresql_version)
    settings = await server_settings(client, server)
    bindir = await find_bindir(settings, transport, pg_version, command_timeout)
    leftovers = await clear_leftovers(
        transport, posixpath.dirname(root), _DRILL_DIR_RE, bindir, command_timeout
    )
    for line in leftovers:
        log(line)

    need = backup_need_bytes(backup.size_bytes, backup.wal_size_bytes)
    port = None
    for candidate in DRILL_PORTS:
        report = await preflight(
            transport, data_dir, need_bytes=need, port=candidate, timeout=command_timeout
        )
        if report.ok:
            port = candidate
            break
        if {r.kind for r in report.refusals} != {RefusalKind.PORT_BUSY}:
            raise PreflightRefused(report.refusals)
    if port is None:
        raise DrillError(f"no free port in {DRILL_PORTS.start}-{DRILL_PORTS.stop - 1} on {node}")

    plan = build_plan(
        client,
        node=node,
        server=server,
        backup=backup,
        backup_why=why,
        target=target,
        destination=Destination(path=data_dir),
        options=RecoveryOptions(get_wal=True, target_action=target_action),
        capabilities=source.capabilities,
    )
    mkdir = await transport.run(
        ["sh", "-c", 'umask 077 && mkdir -p -- "$1" && chmod go-rwx -- "$2" "$3"',
         "drconsole-drill", root, posixpath.dirname(posixpath.dirname(root)),
         posixpath.dirname(root)],
        timeout=command_timeout,
    )  # fmt: skip
    if mkdir.returncode != 0:
        raise DrillError(f"cannot create {root} on {node}: {mkdir.stderr.strip()}")
    # By then this drill has cleaned up after itself; past it, the next drill does (leftovers).
    await transport.run(deadline_argv(root, int(timeout) + 600), timeout=command_timeout)
    sock = await transport.run(["mktemp", "-d", "/tmp/drconsole.XXXXXX"], timeout=command_timeout)
    socket_dir = sock.stdout.strip()
    if sock.returncode != 0 or not _SOCKET_DIR_RE.fullmatch(socket_dir):
        raise DrillError(f"cannot create a socket directory in /tmp on {node}: {sock.stderr}")
    # Local connections only, on a socket directory only this user can enter (0700): trust is
    # safe there, and no role needs to match the OS user (P13). TCP matches no line: refused.
    hba = f"{root}/drill_hba.conf"
    wrote = await transport.run(
        ["sh", "-c", 'printf "local all all trust\\n" > "$1"', "drconsole-hba", hba],
        timeout=command_timeout,
    )
    if wrote.returncode != 0:
        raise DrillError(f"cannot write {hba} on {node}: {wrote.stderr.strip()}")
    instance = RestoredInstance(
        transport, bindir, data_dir, socket_dir, port, f"{root}/postgres.log", hba_file=hba
    )
    started = False
    cleaned = False
    try:
        log(f"$ {plan.command_line}")
        run = await run_recover(jobs, plan, timeout=timeout, on_line=log)
        conf = await read_restored_conf(transport, data_dir, command_timeout)
        checklist = post_recovery_checklist(conf, notes=run.checklist_notes)
        for item in checklist:
            if item.status is not Health.OK:
                log(f"checklist {item.status.label}: {item.title}: {item.detail}")
        replay_started = time.monotonic()
        remaining = max(10.0, timeout - run.seconds)
        started = True
        instance = await start_on_a_free_port(
            instance, DRILL_PORTS, min(remaining, 300.0), command_timeout
        )
        instance = await _connectable(instance, conninfo_user(settings), command_timeout)
        state = await instance.wait_replayed(timeout=remaining)
        replay_seconds = time.monotonic() - replay_started
        try:
            verification = await run_verification(
                instance, sql, timeout=command_timeout, builtin=not verify_sql
            )
        except (RestoredError, VerifyRefused) as exc:
            verification = Verification(ran=False, rows=0, result=f"error: {exc}")
        verify_result, verified = verification.result, verification.verified
        log(f"verify: {sql} -> {verify_result}")
    finally:
        cleaned = await _clean_up(instance if started else None, transport, socket_dir, root)
    point = " / ".join(p for p in (state.replay_time, state.replay_lsn) if p) or "unknown"
    result = DrillResult(
        server=server,
        node=node,
        backup_id=backup.backup_id,
        target=target.describe(),
        destination=f"{node}:{data_dir}",
        port=instance.port,
        started_at=started_at.isoformat(timespec="seconds"),
        recover_seconds=round(run.seconds, 3),
        replay_seconds=round(replay_seconds, 3),
        rto_seconds=round(run.seconds + replay_seconds, 3),
        recovery_point=point,
        recovery_time=state.replay_time,
        recovery_lsn=state.replay_lsn,
        timeline=state.timeline,
        verified=verified,
        verify_sql=sql,
        verify_result=verify_result,
        checklist=[{"key": i.key, "status": i.status.label, "detail": i.detail} for i in checklist],
        job_id=run.job.job_id,
        cleaned_up=cleaned,
        leftovers=leftovers,
    )
    if journal_dir is not None:
        record_drill(journal_dir, result)
    return result


async def _connectable(
    instance: RestoredInstance, barman_role: str | None, timeout: float
) -> RestoredInstance:
    """The instance with a role that exists in the restored cluster: Barman's own (it is a
    superuser in the reference deployment), else the OS user's name."""
    errors: list[str] = []
    for user in dict.fromkeys([barman_role, None]):
        candidate = replace(instance, user=user)
        try:
            await candidate.query("select 1", timeout)
            return candidate
        except RestoredError as exc:
            errors.append(f"{user or 'the OS user'}: {exc}")
            if "does not exist" not in str(exc):
                break
    raise DrillError("cannot connect to the restored server: " + "; ".join(errors))


async def _clean_up(
    instance: RestoredInstance | None, transport: Transport, socket_dir: str, root: str
) -> bool:
    """Stop the restored server and remove what the drill created; never raises."""
    if instance is not None:
        with contextlib.suppress(Exception):
            await instance.stop()
    cleaned = True
    for path, pattern in ((socket_dir, _SOCKET_DIR_RE), (root, _DRILL_DIR_RE)):
        try:
            await remove_tree(transport, path, pattern)
        except Exception:  # reported through cleaned_up: the drill result stands
            cleaned = False
    return cleaned


def record_drill(journal_dir: str, result: DrillResult) -> None:
    """Append the result next to the job journal (<journal_dir>/drills.jsonl), with the
    journal's own append discipline (flock, single write, fsync)."""
    journal = Journal(journal_dir)
    journal.path = journal.dir / DRILL_JOURNAL
    journal.append_line(json.dumps({"event": "drill", **result.to_json()}, separators=(",", ":")))
