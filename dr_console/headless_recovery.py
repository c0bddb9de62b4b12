"""`drconsole --run recover` and `--run drill`: recovery without a screen. Never imports Textual.

recover: plan, show the plan, refuse without --yes, pre-flight the destination, run barman
recover as a job (its log on stderr), then check the restored configuration for real. The exit
code is the worst checklist item (0 OK, 1 WARNING, 2 CRITICAL); refusals exit 2.
drill: recover to a scratch directory, start, replay, verify, stop, remove; report the RTO.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

from dr_console.config import Config
from dr_console.core.barman_errors import BarmanError
from dr_console.core.collector import Collector
from dr_console.core.drill import DrillError, DrillResult, run_drill
from dr_console.core.jobs import JobError, JobManager
from dr_console.core.journal import Journal, JournalError
from dr_console.core.preflight import (
    PreflightRefused,
    backup_need_bytes,
    claim_destination,
    preflight,
    release_destination,
)
from dr_console.core.recovery import (
    ChecklistItem,
    Destination,
    RecoveryOptions,
    RecoveryPlan,
    RecoveryPlanError,
    RecoveryTarget,
    build_plan,
    parse_destination,
    parse_target,
    post_recovery_checklist,
    validate_target,
)
from dr_console.core.recovery_run import RecoverFailed, run_recover
from dr_console.core.recovery_source import (
    RecoverySource,
    choose_backup_on_node,
    pick_source,
    restore_host_for,
)
from dr_console.core.restored import RestoredError, read_restored_conf
from dr_console.core.transport import Transport, TransportError
from dr_console.core.transport_relay import RelayTransport
from dr_console.headless import (
    EXIT_CRITICAL,
    EXIT_UNKNOWN,
    HeadlessError,
    refuse_readonly,
    restrict,
    run_bounded,
)
from dr_console.models import Health

T = TypeVar("T")
DEFAULT_RECOVER_TIMEOUT = 3600.0
DEFAULT_DRILL_TIMEOUT = 1800.0
_EXPECTED = (
    RecoveryPlanError, PreflightRefused, RecoverFailed, RestoredError, DrillError, JobError,
    JournalError, BarmanError, TransportError,
)  # fmt: skip


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _require(value: str | None, flag: str, command: str) -> str:
    if not value:
        raise HeadlessError(f"--run {command} needs {flag}", EXIT_UNKNOWN)
    return value


def _run(coro: Coroutine[Any, Any, T], timeout: float) -> T:
    async def mapped() -> T:
        try:
            return await coro
        except _EXPECTED as exc:  # the recovery's own refusals and failures: one line, exit 2
            raise HeadlessError(str(exc), EXIT_CRITICAL) from None

    return run_bounded(mapped(), timeout, exit_code=EXIT_CRITICAL)


@dataclass(frozen=True)
class _Context:
    collector: Collector
    source: RecoverySource

    @property
    def node(self) -> str:
        return self.source.node.name

    def transport(self) -> Transport:
        return self.collector.transport(self.node)

    def jobs(self, config: Config) -> JobManager:
        journal = Journal(config.console.journal_dir)
        journal.check_writable()  # refused before the recovery runs unrecorded
        return JobManager({self.node: self.transport()}, journal, config)


async def _context(config: Config, server: str, node: str | None) -> _Context:
    polled = restrict(config, server, node)
    collector = Collector(polled)
    fleet = await collector.collect(force_slow=True)
    try:
        source = pick_source(fleet, config, server, node)
    except BaseException:
        await collector.close()
        raise
    return _Context(collector, source)


async def _plan(
    ctx: _Context,
    server: str,
    target: RecoveryTarget,
    dest: Destination,
    args: argparse.Namespace,
) -> RecoveryPlan:
    src = ctx.source
    problems = validate_target(target, src.window, src.backups, last_wal=src.last_wal)
    if problems:
        raise RecoveryPlanError("target refused: " + "; ".join(problems))
    client = ctx.collector.barman_client(ctx.node)
    backup, why = await choose_backup_on_node(
        client, src, server, target, pick=getattr(args, "backup", None)
    )
    copy_wal = bool(getattr(args, "copy_wal", False))
    options = RecoveryOptions(
        get_wal=not copy_wal,
        target_action=args.target_action,
        standby_mode=bool(getattr(args, "standby", False)),
        jobs=getattr(args, "jobs", None),
        restore_host=restore_host_for(src) if dest.remote and not copy_wal else None,
    )
    return build_plan(
        client,
        node=ctx.node,
        server=server,
        backup=backup,
        backup_why=why,
        target=target,
        destination=dest,
        options=options,
        capabilities=src.capabilities,
    )


def _checklist_exit(items: list[ChecklistItem]) -> int:
    worst = max((i.status for i in items), default=Health.OK)
    return int(min(worst, Health.CRITICAL))


def run_recover_command(args: argparse.Namespace, config: Config, out: TextIO) -> int:
    refuse_readonly(config, "recover")
    server = _require(args.server, "--server NAME", "recover")
    try:
        target = parse_target(_require(args.target, "--target", "recover"))
        dest = parse_destination(_require(args.dest, "--dest PATH|HOST:PATH", "recover"))
    except RecoveryPlanError as exc:
        raise HeadlessError(str(exc), EXIT_CRITICAL) from None
    timeout = args.timeout or DEFAULT_RECOVER_TIMEOUT

    async def go() -> int:
        ctx = await _context(config, server, args.node)
        try:
            plan = await _plan(ctx, server, target, dest, args)
            if args.format != "json":
                out.write("recovery plan\n" + "".join(f"  {ln}\n" for ln in plan.summary_lines()))
                out.flush()
            if not args.yes:
                raise HeadlessError(
                    "refusing to recover without --yes: review the plan above, then add --yes",
                    EXIT_CRITICAL,
                )
            node_transport = ctx.transport()
            dest_transport: Transport = (
                RelayTransport(
                    node_transport,
                    dest.ssh_target or "",
                    connect_timeout=config.console.connect_timeout,
                )
                if dest.remote
                else node_transport
            )
            command_timeout = config.command_timeout(ctx.node)
            report = await preflight(
                dest_transport,
                dest.path,
                need_bytes=backup_need_bytes(plan.backup.size_bytes, plan.backup.wal_size_bytes),
                timeout=command_timeout,
            )
            for warning in report.warnings:
                _err(f"drconsole: warning: {warning}")
            report.raise_if_refused()
            await claim_destination(dest_transport, dest.path, command_timeout)
            try:
                run = await run_recover(
                    ctx.jobs(config), plan, timeout=timeout,
                    on_line=lambda line: _err(f"  | {line}"),
                )  # fmt: skip
            finally:
                await release_destination(dest_transport, dest.path, command_timeout)
            conf = await read_restored_conf(dest_transport, dest.path, command_timeout)
            items = post_recovery_checklist(conf, remote=dest.remote, notes=run.checklist_notes)
        finally:
            await ctx.collector.close()
        if args.format == "json":
            doc = {
                "server": server, "node": plan.node, "backup_id": plan.backup.backup_id,
                "target": target.describe(), "destination": dest.display(),
                "argv": list(plan.argv), "job_id": run.job.job_id,
                "recover_seconds": round(run.seconds, 3), "warnings": list(plan.warnings),
                "checklist": [{"key": i.key, "title": i.title, "status": i.status.label,
                               "detail": i.detail} for i in items],
            }  # fmt: skip
            out.write(json.dumps(doc, indent=2) + "\n")
        else:
            out.write(f"recovered in {run.seconds:.1f} s (job {run.job.job_id})\n")
            out.write("post-recovery checklist\n")
            for item in items:
                out.write(f"  {item.status.label:<8} {item.title}: {item.detail}\n")
        return _checklist_exit(items)

    return _run(go(), timeout + 60)


def _drill_text(result: DrillResult, out: TextIO) -> None:
    out.write(f"drill of {result.server} on {result.node}: backup {result.backup_id}, "
              f"target {result.target}\n")
    for line in result.report_lines(width=17, with_backup=False):
        out.write(f"  {line}\n")


def run_drill_command(args: argparse.Namespace, config: Config, out: TextIO) -> int:
    refuse_readonly(config, "drill")
    server = _require(args.server, "--server NAME", "drill")
    try:
        target = parse_target(args.target or "latest")
    except RecoveryPlanError as exc:
        raise HeadlessError(str(exc), EXIT_CRITICAL) from None
    extra = config.server(server)
    verify_sql = args.verify or (extra.verify_sql if extra else None)
    timeout = args.timeout or DEFAULT_DRILL_TIMEOUT
    show: Callable[[str], None] = (
        (lambda line: None) if args.format == "json" else (lambda line: _err(f"  | {line}"))
    )

    async def go() -> DrillResult:
        ctx = await _context(config, server, args.node)
        try:
            return await run_drill(
                source=ctx.source,
                server=server,
                transport=ctx.transport(),
                client=ctx.collector.barman_client(ctx.node),
                jobs=ctx.jobs(config),
                target=target,
                target_action=args.target_action,
                verify_sql=verify_sql,
                timeout=timeout,
                command_timeout=config.command_timeout(ctx.node),
                journal_dir=config.console.journal_dir,
                log=show,
            )
        finally:
            await ctx.collector.close()

    result = _run(go(), timeout + 60)
    if args.format == "json":
        out.write(json.dumps(result.to_json(), indent=2) + "\n")
    else:
        _drill_text(result, out)
    if not result.verified:
        return EXIT_CRITICAL
    return 1 if any(i["status"] != "OK" for i in result.checklist) else 0


Runner = Callable[[argparse.Namespace, Config, TextIO], int]
RECOVERY_RUNNERS: dict[str, Runner] = {
    "recover": run_recover_command,
    "drill": run_drill_command,
}
