"""`drconsole --run metrics`: the fleet's figures in Prometheus's exposition format.

Once: one collection, printed (text format 0.0.4, or OpenMetrics with --format openmetrics) or
written atomically to --output FILE (node_exporter's textfile collector). With --listen
HOST:PORT: the collector runs on its normal cadence (fast facts every refresh_interval, Barman's
status and catalogue on the slow cadence, `barman check` on its own) and every scrape is answered
from the last snapshot, with its age as drconsole_scrape_age_seconds; no Barman command runs
because of a scrape. It binds to loopback unless --listen-any is given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector as PrometheusCollector

from dr_console.config import Config
from dr_console.core import checks as checks_mod
from dr_console.core.collector import Collector
from dr_console.core.metrics import MetricsInput, families, read_last_drills
from dr_console.headless import EXIT_OK, EXIT_UNKNOWN, HeadlessError, collect, run_bounded
from dr_console.models import FleetSnapshot


def _input(config: Config, fleet: FleetSnapshot) -> MetricsInput:
    return MetricsInput(
        fleet=fleet,
        checks=checks_mod.evaluate_fleet(fleet, config),
        drills=read_last_drills(config.console.journal_dir),
        now=datetime.now(UTC),
    )


class _Latest(PrometheusCollector):
    """Answers each scrape from the newest snapshot (the collector loop replaces it)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.fleet: FleetSnapshot | None = None
        self.lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            fleet = self.fleet
        if fleet is None:
            return iter(())
        return iter(families(_input(self.config, fleet)))


def _registry(collector: PrometheusCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def exposition(config: Config, fleet: FleetSnapshot, openmetrics: bool) -> bytes:
    latest = _Latest(config)
    latest.fleet = fleet
    registry = _registry(latest)
    if openmetrics:
        data: bytes = generate_openmetrics(registry)  # type: ignore[no-untyped-call]
        return data
    return generate_latest(registry)


def write_atomically(path: Path, data: bytes) -> None:
    """Temporary file in the same directory, fsync, rename: a reader (node_exporter) sees the
    old file or the new one, never half of one."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # node_exporter runs as its own user
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def parse_listen(value: str, listen_any: bool) -> tuple[str, int]:
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536 or not host:
        raise HeadlessError(f"--listen {value!r}: expected HOST:PORT, e.g. 127.0.0.1:9187",
                            EXIT_UNKNOWN)  # fmt: skip
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        infos = socket.getaddrinfo(host, int(port_text), type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise HeadlessError(f"--listen {value!r}: {host!r} does not resolve ({exc.strerror})",
                            EXIT_UNKNOWN) from None  # fmt: skip
    addresses = {str(info[4][0]) for info in infos}
    if not listen_any and not all(ipaddress.ip_address(a).is_loopback for a in addresses):
        raise HeadlessError(
            f"refused: --listen {value} is not a loopback address ({', '.join(sorted(addresses))})"
            "; the metrics would be served beyond this host: add --listen-any to do that",
            EXIT_UNKNOWN,
        )
    return host, int(port_text)


async def _serve(config: Config, latest: _Latest, host: str, port: int, out: TextIO) -> None:
    collector = Collector(config)
    try:
        server, _thread = start_http_server(port, addr=host, registry=_registry(latest))
    except OSError as exc:
        await collector.close()
        raise HeadlessError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                            EXIT_UNKNOWN) from None  # fmt: skip
    out.write(f"serving /metrics on http://{host}:{port}/metrics (Ctrl-C to stop)\n")
    out.flush()
    interval = config.console.refresh_interval
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        first = True
        while not stop.is_set():
            started = loop.time()
            try:
                fleet = await asyncio.wait_for(collector.collect(force_slow=first),
                                               collector.cycle_timeout)  # fmt: skip
            except Exception as exc:  # keep serving the last figures; their age says how old
                print(f"drconsole: metrics: collection failed: {exc}", file=sys.stderr)
            else:
                first = False
                with latest.lock:
                    latest.fleet = fleet
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, interval - (loop.time() - started)))
    finally:
        server.shutdown()
        await collector.close()


def run_metrics(args: argparse.Namespace, config: Config, out: TextIO) -> int:
    if args.format not in ("text", "openmetrics"):
        raise HeadlessError(
            f"--run metrics prints Prometheus's text format (--format text, the default) or "
            f"OpenMetrics (--format openmetrics), not {args.format}", EXIT_UNKNOWN)
    if args.listen:
        if args.output:
            raise HeadlessError("--listen serves the metrics; --output writes them once: "
                                "choose one", EXIT_UNKNOWN)  # fmt: skip
        host, port = parse_listen(args.listen, args.listen_any)
        asyncio.run(_serve(config, _Latest(config), host, port, out))
        return EXIT_OK
    fleet = run_bounded(collect(config), args.timeout)
    data = exposition(config, fleet, args.format == "openmetrics")
    if args.output:
        try:
            write_atomically(Path(args.output), data)
        except OSError as exc:
            raise HeadlessError(f"cannot write {args.output}: {exc.strerror or exc}",
                                EXIT_UNKNOWN) from None  # fmt: skip
        return EXIT_OK
    out.write(data.decode("utf-8"))
    out.flush()
    return EXIT_OK


METRICS_RUNNERS = {"metrics": run_metrics}
