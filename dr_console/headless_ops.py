"""`--run backup|switch-wal|cron|jobs`: Barman operations without a screen.

Operations run as detached jobs on the Barman node (core/jobs.py), so `--wait` only follows a
job that would finish anyway if this process died; its output is streamed to stdout as Barman
writes it. Refusals (read-only, passive node, a backup already running) exit 2 with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TextIO

from dr_console.config import Config, NodeConfig
from dr_console.core.barman import BarmanClient
from dr_console.core.barman_errors import BarmanError, BarmanLocked
from dr_console.core.collector import Collector
from dr_console.core.jobs import JobError, JobManager
from dr_console.core.journal import Journal, JournalError
from dr_console.core.transport import Transport, TransportError, open_transport
from dr_console.core.validation import UnsafeValue, check_server_name
from dr_console.headless import (
    EXIT_CRITICAL,
    EXIT_OK,
    EXIT_UNKNOWN,
    HeadlessError,
    refuse_readonly,
    run_bounded,
)
from dr_console.models import Job, JobState, NodeRole

Runner = Callable[[argparse.Namespace, Config, TextIO], int]


def _server(args: argparse.Namespace, what: str) -> str:
    if not args.server:
        raise HeadlessError(f"--run {what} needs --server NAME", EXIT_UNKNOWN)
    try:
        return check_server_name(args.server)
    except UnsafeValue as exc:
        raise HeadlessError(str(exc), EXIT_UNKNOWN) from None


def _node_config(config: Config, name: str) -> NodeConfig:
    try:
        return config.node(name)
    except KeyError:
        names = ", ".join(n.name for n in config.nodes)
        raise HeadlessError(f"unknown node '{name}' (configured: {names})", EXIT_UNKNOWN) from None


async def _primary_for(config: Config, server: str, requested: str | None, what: str) -> NodeConfig:
    """The primary node that runs `what` for `server`; passive nodes are refused clearly."""
    if requested is not None:
        node = _node_config(config, requested)
        if node.role is NodeRole.PASSIVE:
            raise HeadlessError(
                f"{node.name} is a passive Barman node: {what} runs on the primary node"
                + (f" ({node.primary})" if node.primary else ""),
                EXIT_CRITICAL,
            )
        return node
    primaries = [n for n in config.nodes if n.role is NodeRole.PRIMARY]
    candidates = [n for n in primaries if not n.servers or server in n.servers]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise HeadlessError(f"no primary node is configured for server '{server}'", EXIT_UNKNOWN)
    found = []
    for node in candidates:  # ask each primary which servers it has
        transport = open_transport(node, connect_timeout=config.console.connect_timeout)
        try:
            client = BarmanClient(transport, barman=node.barman, config_file=node.barman_config)
            if server in await client.list_servers():
                found.append(node)
        except (BarmanError, TransportError):
            continue
        finally:
            await transport.close()
    if len(found) != 1:
        where = ", ".join(n.name for n in found) or "none of the reachable primary nodes"
        raise HeadlessError(
            f"server '{server}' is on {where}: choose with --node NODE", EXIT_UNKNOWN
        )
    return found[0]


def _manager(config: Config, node: NodeConfig) -> tuple[JobManager, Transport]:
    transport = open_transport(node, connect_timeout=config.console.connect_timeout)
    manager = JobManager({node.name: transport}, Journal(config.console.journal_dir), config)
    return manager, transport


async def _follow(manager: JobManager, job: Job, out: TextIO) -> Job:
    """Stream the job's log to `out` as it is written; return the job once it has ended.

    Losing the node while waiting does not end the job (it runs on there, detached): the
    message says so and how to see how it ended.
    """
    try:
        async for line in manager.tail(job, from_start=True):
            out.write(line + "\n")
            out.flush()
        await manager.wait(job, poll=0.5)
        return await manager.get(job.node, job.job_id)
    except (JobError, TransportError) as exc:
        raise HeadlessError(
            f"lost {job.node} while waiting for {job.operation} job {job.job_id} ({exc}); the "
            f"job goes on there: `drconsole --run jobs --node {job.node}` shows how it ended",
            EXIT_UNKNOWN,
        ) from None


def _describe_start(job: Job, out: TextIO) -> None:
    out.write(
        f"job {job.job_id} started on {job.node}: {' '.join(job.argv)}\n"
        f"log: {job.node}:{job.log_path}\n"
        f"follow it with: drconsole --run jobs --node {job.node}\n"
    )
    out.flush()


def _failure_reason(manager: JobManager, job: Job) -> str:
    progress = manager.progress(job)
    if progress.error:
        return progress.error
    return f"exit status {job.exit_status}" if job.exit_status is not None else job.state.value


async def _start_job(
    config: Config,
    args: argparse.Namespace,
    what: str,
    make_argv: Callable[[BarmanClient, str], list[str]],
) -> tuple[JobManager, Transport, Job]:
    server = _server(args, what)
    node = await _primary_for(config, server, args.node, what)
    manager, transport = _manager(config, node)
    client = BarmanClient(transport, barman=node.barman, config_file=node.barman_config)
    try:
        job = await manager.start(node.name, server, what, make_argv(client, server))
    except BarmanLocked as exc:
        await transport.close()
        raise HeadlessError(f"refused: {exc.message}", EXIT_CRITICAL) from None
    except (JobError, JournalError, BarmanError, TransportError, UnsafeValue) as exc:
        await transport.close()
        raise HeadlessError(
            f"{what} could not start on {node.name}: {exc}", EXIT_CRITICAL
        ) from None
    return manager, transport, job


def run_backup(args: argparse.Namespace, config: Config, out: TextIO) -> int:
    refuse_readonly(config, "backup")

    async def go() -> int:
        manager, transport, job = await _start_job(
            config, args, "backup", lambda c, s: c.backup_argv(s, wait=args.wait)
        )
        try:
            _describe_start(job, out)
            if not args.wait:
                return EXIT_OK
            ended = await _follow(manager, job, out)
            if ended.state is JobState.SUCCEEDED:
                out.write(f"backup job {job.job_id} succeeded\n")
                return EXIT_OK
            print(
                f"drconsole: backup failed on {job.node}: {_failure_reason(manager, ended)}",
                file=sys.stderr,
            )
            return EXIT_CRITICAL
        finally:
            await transport.close()

    return _run(go(), args.timeout)


def run_switch_wal(args: argparse.Namespace, config: Config, out: TextIO) -> int:
    refuse_readonly(config, "switch-wal")

    async def go() -> int:
        manager, transport, job = await _start_job(
            config, args, "switch-wal", lambda c, s: c.switch_wal_argv(s, force=True, archive=True)
        )
        try:
            ended = await _follow(manager, job, out)
            progress = manager.progress(ended)
            if ended.state is not JobState.SUCCEEDED:
                reason = _failure_reason(manager, ended)
                print(f"drconsole: switch-wal failed on {job.node}: {reason}", file=sys.stderr)
                return EXIT_CRITICAL
            closed = progress.closed_wal
            if closed is None:
                out.write("switch-wal: no WAL was closed (nothing written since the last switch)\n")
                return EXIT_OK
            archived = await _archived_on_node(config, ended.node, ended.server or "", closed)
            if archived:
                out.write(f"closed WAL {closed}; archived on {ended.node}\n")
                return EXIT_OK
            print(
                f"drconsole: WAL {closed} was closed but is not archived on {ended.node} yet",
                file=sys.stderr,
            )
            return EXIT_CRITICAL
        finally:
            await transport.close()

    return _run(go(), args.timeout)


async def _archived_on_node(config: Config, node: str, server: str, wal: str) -> bool:
    """Confirm from the node's own catalogue of WAL (xlog.db), independently of Barman's log."""
    restricted = Config(
        console=config.console,
        nodes=(config.node(node),),
        servers=tuple(s for s in config.servers if s.name == server),
    )
    collector = Collector(restricted)
    try:
        for _ in range(10):
            fleet = await collector.collect()
            snap = fleet.nodes[node].servers.get(server)
            queue = snap.archive_queue if snap is not None else None
            if queue is not None and (queue.last_archived_wal or "") >= wal:
                return True
            await asyncio.sleep(1.0)
        return False
    finally:
        await collector.close()


def run_cron(args: argparse.Namespace, config: Config, out: TextIO) -> int:
    refuse_readonly(config, "cron")
    nodes = [_node_config(config, args.node)] if args.node else list(config.nodes)

    async def one(node: NodeConfig) -> bool:
        transport = open_transport(node, connect_timeout=config.console.connect_timeout)
        client = BarmanClient(transport, barman=node.barman, config_file=node.barman_config)
        try:
            result = await transport.run(client.cron_argv(), config.command_timeout(node.name))
        except TransportError as exc:
            print(f"drconsole: cron on {node.name}: {exc}", file=sys.stderr)
            return False
        finally:
            await transport.close()
        for line in (result.stdout + result.stderr).splitlines():
            out.write(f"{node.name}: {line}\n")
        if result.returncode != 0:
            print(f"drconsole: cron on {node.name} exited {result.returncode}", file=sys.stderr)
        return result.returncode == 0

    async def go() -> int:
        results = await asyncio.gather(*(one(n) for n in nodes))
        return EXIT_OK if all(results) else EXIT_CRITICAL

    return _run(go(), args.timeout)


def _job_dict(job: Job, now: datetime) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "node": job.node,
        "server": job.server,
        "operation": job.operation,
        "argv": list(job.argv),
        "state": job.state.value,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "ended_at": job.ended_at.isoformat() if job.ended_at else None,
        "elapsed_seconds": job.elapsed(now),
        "exit_status": job.exit_status,
        "user": job.user,
        "ssh_client": job.ssh_client,
        "log_path": job.log_path,
    }


def run_jobs(args: argparse.Namespace, config: Config, out: TextIO) -> int:
    if args.format not in ("text", "json"):
        raise HeadlessError(
            f"--run jobs prints text or json, not {args.format}: it lists jobs, it judges "
            "nothing (--run check --format nagios does)",
            EXIT_UNKNOWN,
        )
    nodes = [_node_config(config, args.node)] if args.node else list(config.nodes)

    async def go() -> int:
        transports = {
            n.name: open_transport(n, connect_timeout=config.console.connect_timeout) for n in nodes
        }
        manager = JobManager(transports, Journal(config.console.journal_dir), config)
        jobs: list[Job] = []
        errors: dict[str, str] = {}
        warnings: list[str] = []
        try:
            for node in nodes:
                try:
                    try:
                        jobs.extend(await manager.list(node.name))
                    except JournalError as exc:
                        # The listing does not need the journal: say so, list without it.
                        warnings.append(f"journal: {exc}; jobs listed without recording them")
                        jobs.extend(await manager.list(node.name, journal=False))
                    warnings.extend(manager.problems.get(node.name, []))
                except (JobError, TransportError) as exc:
                    errors[node.name] = str(exc)
        finally:
            for transport in transports.values():
                await transport.close()
        if args.server:
            jobs = [j for j in jobs if j.server == args.server]
        now = datetime.now(UTC)
        jobs.sort(key=lambda j: j.started_at or now, reverse=True)
        if args.format == "json":
            doc = {
                "schema": 1,
                "generated_at": now.isoformat(),
                "jobs": [_job_dict(j, now) for j in jobs],
                "unreachable": errors,
                "warnings": list(dict.fromkeys(warnings)),
            }
            out.write(json.dumps(doc, indent=2) + "\n")
        else:
            for job in jobs:
                elapsed = job.elapsed(now)
                status = "-" if job.exit_status is None else str(job.exit_status)
                out.write(
                    f"{job.job_id}  {job.node:<12} {job.server or '-':<12} {job.operation:<11}"
                    f" {job.state.value:<10} exit {status:<4}"
                    f" {elapsed or 0:8.1f}s  {job.user or '-'}\n"
                )
            if not jobs:
                out.write("no jobs\n")
        for warning in dict.fromkeys(warnings):
            print(f"drconsole: {warning}", file=sys.stderr)
        for name, error in errors.items():
            print(f"drconsole: {name}: {error}", file=sys.stderr)
        return EXIT_UNKNOWN if errors else EXIT_OK

    return _run(go(), args.timeout)


def _run(coro: Coroutine[Any, Any, int], timeout: float | None) -> int:
    return run_bounded(coro, timeout, afterwards="; the job goes on on the node")


OPERATION_RUNNERS: dict[str, Runner] = {
    "backup": run_backup,
    "switch-wal": run_switch_wal,
    "cron": run_cron,
    "jobs": run_jobs,
}
