"""`drconsole --run …`: scripted checks and operations without a screen. Never imports Textual.

Results go to stdout, diagnostics to stderr. Exit codes follow the Nagios plugin convention:
0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (unreachable node, bad config, unknown server).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any, TextIO, TypeVar

from dr_console.config import Config, ConfigError
from dr_console.core import checks as checks_mod
from dr_console.core.collector import Collector
from dr_console.core.validation import UnsafeValue
from dr_console.headless_output import (
    check_json,
    check_nagios,
    check_text,
    status_json,
    status_text,
)
from dr_console.models import FleetSnapshot, Health

EXIT_OK, EXIT_WARNING, EXIT_CRITICAL, EXIT_UNKNOWN = 0, 1, 2, 3
T = TypeVar("T")


class HeadlessError(Exception):
    """A user-facing refusal: printed as one line on stderr, exit code attached."""

    def __init__(self, message: str, exit_code: int = EXIT_UNKNOWN) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _err(message: str) -> None:
    print(f"drconsole: {message}", file=sys.stderr)


def load_for_headless(explicit: str | None) -> Config:
    from dr_console.config import config_warnings, find_config, load_config

    path = find_config(explicit)
    if path is None:
        raise HeadlessError(
            "no configuration found (tried --config, $DRCONSOLE_CONFIG, ./drconsole.toml, "
            "$XDG_CONFIG_HOME/drconsole/config.toml); write one with 'drconsole init' "
            "or start the demo lab with 'drconsole lab up'"
        )
    try:
        config = load_config(path)
    except ConfigError as exc:
        raise HeadlessError(str(exc)) from None
    for warning in config_warnings(path):
        _err(f"warning: {warning}")
    return config


def restrict(config: Config, server: str | None, node: str | None) -> Config:
    """Narrow the config to one node and/or server; unknown names are refused up front."""
    from dr_console.core.validation import UnsafeValue, check_server_name

    nodes = config.nodes
    if node is not None:
        names = [n.name for n in config.nodes]
        if node not in names:
            raise HeadlessError(f"unknown node '{node}' (configured: {', '.join(names)})")
        nodes = tuple(n for n in config.nodes if n.name == node)
        # a passive node's geo state needs its primary's facts: keep the primary polled too
        primary = nodes[0].primary
        if primary is not None:
            nodes += tuple(n for n in config.nodes if n.name == primary)
    if server is not None:
        try:
            check_server_name(server)
        except UnsafeValue as exc:
            raise HeadlessError(str(exc)) from None
        nodes = tuple(
            replace(n, servers=(server,)) if (not n.servers or server in n.servers) else n
            for n in nodes
        )
    return replace(config, nodes=nodes)


def _filter_fleet(fleet: FleetSnapshot, server: str | None, node: str | None) -> FleetSnapshot:
    nodes = {}
    for name, snap in fleet.nodes.items():
        if node is not None and name != node:
            continue
        if server is not None:
            snap = replace(snap, servers={k: v for k, v in snap.servers.items() if k == server})
        nodes[name] = snap
    return replace(fleet, nodes=nodes)


def _require_server_seen(fleet: FleetSnapshot, server: str | None) -> None:
    if server is None:
        return
    if any(server in n.servers for n in fleet.nodes.values()):
        return
    if all(not n.reachable for n in fleet.nodes.values()):
        return  # cannot tell: reported as UNKNOWN through the node checks
    known = sorted({s for n in fleet.nodes.values() for s in n.servers})
    raise HeadlessError(
        f"unknown server '{server}': no reachable node has it"
        + (f" (known: {', '.join(known)})" if known else "")
    )


async def collect(config: Config) -> FleetSnapshot:
    collector = Collector(config)
    try:
        return await collector.collect(force_slow=True)
    finally:
        await collector.close()


def run_check(args: argparse.Namespace, config: Config, out: TextIO) -> int:
    polled = restrict(config, args.server, args.node)
    fleet = run_bounded(collect(polled), args.timeout)
    _require_server_seen(fleet, args.server)
    fleet = _filter_fleet(fleet, args.server, args.node)
    results = checks_mod.evaluate_fleet(fleet, config)
    overall = checks_mod.worst(results)
    if args.format == "json":
        out.write(json.dumps(check_json(fleet, results, overall), indent=2) + "\n")
    elif args.format == "nagios":
        out.write(check_nagios(results, overall) + "\n")
    else:
        check_text(fleet, results, overall, out)
    return int(overall)


def run_status(args: argparse.Namespace, config: Config, out: TextIO) -> int:
    if args.format == "nagios":
        raise HeadlessError("--format nagios applies to --run check only", EXIT_UNKNOWN)
    polled = restrict(config, args.server, args.node)
    fleet = run_bounded(collect(polled), args.timeout)
    _require_server_seen(fleet, args.server)
    fleet = _filter_fleet(fleet, args.server, args.node)
    results = checks_mod.evaluate_fleet(fleet, config)
    if args.format == "json":
        out.write(json.dumps(status_json(fleet, results), indent=2) + "\n")
    else:
        status_text(fleet, results, out)
    unreachable = any(not n.reachable for n in fleet.nodes.values())
    return EXIT_UNKNOWN if unreachable else EXIT_OK


def refuse_readonly(config: Config, command: str) -> None:
    """Every `--run` operation starts with this: read-only removes them all."""
    if config.console.readonly:
        raise HeadlessError(
            f"read-only: --run {command} is an operation, and operations are disabled "
            "(--readonly or console.readonly = true)",
            EXIT_CRITICAL,
        )


def run_bounded(
    coro: Coroutine[Any, Any, T],
    timeout: float | None,
    *,
    exit_code: int = EXIT_UNKNOWN,
    afterwards: str = "",
) -> T:
    """Run a headless command's coroutine, giving up after `timeout` seconds with one line."""

    async def bounded() -> T:
        if timeout is None:
            return await coro
        try:
            return await asyncio.wait_for(coro, timeout)
        except TimeoutError:
            message = f"gave up after --timeout {timeout:g} s{afterwards}"
            raise HeadlessError(message, exit_code) from None

    return asyncio.run(bounded())


Runner = Callable[[argparse.Namespace, Config, TextIO], int]


def _runners(command: str) -> Runner | None:
    """The runner of one command, importing only what that command needs."""
    if command in ("check", "status"):
        return {"check": run_check, "status": run_status}[command]
    if command == "metrics":
        from dr_console.headless_metrics import METRICS_RUNNERS

        return METRICS_RUNNERS[command]
    from dr_console.headless_ops import OPERATION_RUNNERS
    from dr_console.headless_recovery import RECOVERY_RUNNERS

    return {**OPERATION_RUNNERS, **RECOVERY_RUNNERS}.get(command)


def run_headless(args: argparse.Namespace) -> int:
    try:
        config = load_for_headless(args.config)
        if args.readonly is not None:
            config = replace(config, console=replace(config.console, readonly=args.readonly))
        runner = _runners(args.run)
        if runner is None:
            raise HeadlessError(f"--run {args.run} is not available in this version")
        if args.format == "openmetrics" and args.run != "metrics":
            raise HeadlessError("--format openmetrics applies to --run metrics only", EXIT_UNKNOWN)
        if (args.output or args.listen or args.listen_any) and args.run != "metrics":
            raise HeadlessError("--output, --listen and --listen-any apply to --run metrics only",
                                EXIT_UNKNOWN)  # fmt: skip
        return runner(args, config, sys.stdout)
    except HeadlessError as exc:
        _err(str(exc))
        return exc.exit_code
    except UnsafeValue as exc:  # a value refused before any command ran
        _err(f"refused: {exc}")
        return EXIT_UNKNOWN
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): no more output, and no second error at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_UNKNOWN
    except (RecursionError, MemoryError) as exc:
        _err("refused: an input is too large or nested too deeply to handle "
             f"({type(exc).__name__})")
        return EXIT_UNKNOWN
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if os.environ.get("DRCONSOLE_DEBUG") == "1":
            raise
        _err(f"internal error ({type(exc).__name__}: {exc}); nothing more was done")
        return EXIT_UNKNOWN


__all__ = ["EXIT_CRITICAL", "EXIT_OK", "EXIT_UNKNOWN", "EXIT_WARNING", "Health", "run_headless"]
