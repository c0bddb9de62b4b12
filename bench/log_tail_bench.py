"""How fast the job tail pipeline delivers lines, and how late (prints figures, asserts nothing).

A detached job (the real launcher, through the real LocalTransport) writes timestamped lines into
its output.log at a fixed rate; JobManager.tail() follows it (sh -> tail -F -> pipe -> asyncio).
For each rate it prints the lines/second delivered and the latency from a line's write to its
arrival in the consumer (p50 / p95 / p99 / max).

    .venv/bin/python bench/log_tail_bench.py [--seconds 3] [--rates 1000,5000,20000,0]
    .venv/bin/python bench/log_tail_bench.py --config drconsole.toml --node bserver

A rate of 0 writes as fast as Python can. With --config/--node the job runs on that node through
its transport (ssh): latencies then assume the node's clock is the console's (true on the lab,
where both are this machine). The UI side (Log widget, batched writes) is not measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dr_console.config import Config, ConsoleConfig, NodeConfig, load_config
from dr_console.core.jobs import JobManager
from dr_console.core.journal import Journal
from dr_console.core.transport import open_transport
from dr_console.core.transport_local import LocalTransport
from dr_console.models import NodeRole

# One line of Python (job argv must be single lines): write `count` lines at `rate` per second,
# each "<seq> <time.time()> padding", in 5 ms ticks; rate 0 means no pacing.
WRITER = (
    "import sys, time; rate = float(sys.argv[1]); count = int(sys.argv[2]); "
    "pad = 'x' * 60; out = sys.stdout; t0 = time.time(); i = 0; "
    "exec('while i < count:\\n"
    " due = count if rate == 0 else min(count, int((time.time() - t0) * rate) + 1)\\n"
    " while i < due:\\n"
    '  out.write(f"{i} {time.time():.6f} {pad}\\\\n"); i += 1\\n'
    " out.flush()\\n"
    " if rate: time.sleep(0.005)')"
)


async def run_one(manager: JobManager, node: str, python: str, rate: float, seconds: float) -> str:
    count = int(rate * seconds) if rate else 200_000
    job = await manager.start(node, None, "bench", [python, "-c", WRITER, str(rate), str(count)])
    latencies: list[float] = []
    received = 0
    first_at: float | None = None
    last_at = 0.0
    expected = 0
    out_of_order = 0
    async for line in manager.tail(job):
        now = time.time()
        seq_text, _, rest = line.partition(" ")
        stamp = float(rest.split(" ", 1)[0])
        if first_at is None:
            first_at = now
        if int(seq_text) != expected:
            out_of_order += 1
        expected = int(seq_text) + 1
        latencies.append(now - stamp)
        received += 1
        last_at = now
    ended_at = time.time()
    span = (last_at - first_at) if first_at is not None else 0.0
    status = await manager.wait(job, poll=0.1, timeout=30)
    latencies.sort()
    ms = [1000 * latencies[int(q * (len(latencies) - 1))] for q in (0.5, 0.95, 0.99)]
    label = f"{rate:>8.0f}/s" if rate else "     max"
    return (
        f"{label}  lines {received:>7}  delivered {received / span if span else 0:>9.0f} lines/s  "
        f"latency ms p50 {ms[0]:6.1f}  p95 {ms[1]:6.1f}  p99 {ms[2]:6.1f}  "
        f"max {1000 * latencies[-1]:6.1f}  mean {1000 * statistics.fmean(latencies):6.1f}  "
        f"gaps {out_of_order}  end seen after last line {1000 * (ended_at - last_at):4.0f} ms  "
        f"exit {status}"
    )


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[int(q * (len(values) - 1))] if values else 0.0


async def run_ui(manager: JobManager, node: str, python: str, rate: float, seconds: float) -> str:
    """The same job shown in the real JobLogScreen (headless Textual app): display latency (line
    written -> write_lines() into the Log) and event-loop stalls (a 10 ms ticker's lateness)."""
    from textual.app import App

    from dr_console.tui.screens.job_log import JobLogScreen
    from dr_console.tui.widgets.job_log import JobLog

    count = int(rate * seconds) if rate else 200_000
    display: list[float] = []
    original = JobLog.write_lines

    def timed(self: JobLog, lines: Any, scroll_end: bool | None = None) -> JobLog:
        lines = list(lines)
        result = original(self, lines, scroll_end)
        now = time.time()
        display.extend(now - float(line.split(" ", 2)[1]) for line in lines)
        return result

    JobLog.write_lines = timed  # type: ignore[method-assign,assignment]
    stalls: list[float] = []
    try:
        job = await manager.start(
            node, None, "bench", [python, "-c", WRITER, str(rate), str(count)]
        )
        app: App[None] = App()
        async with app.run_test(size=(120, 40)):
            started = time.monotonic()
            await app.push_screen(JobLogScreen(manager, job, from_start=True))
            log = app.screen.query_one(JobLog)
            while not (log.ended and not log.pending):
                before = time.monotonic()
                await asyncio.sleep(0.01)
                stalls.append(time.monotonic() - before - 0.01)
                if time.monotonic() - started > seconds + 120:
                    break
            span = time.monotonic() - started
    finally:
        JobLog.write_lines = original  # type: ignore[method-assign]
    label = f"{rate:>8.0f}/s" if rate else "     max"
    return (
        f"{label}  UI lines {log.received:>7} ({log.received / span:>7.0f}/s,"
        f" kept {log.line_count})  display latency ms p50 {1000 * _pct(display, 0.5):6.1f}"
        f"  p99 {1000 * _pct(display, 0.99):6.1f}  max {1000 * max(display, default=0):6.1f}"
        f"  loop stall ms p99 {1000 * _pct(stalls, 0.99):5.1f}"
        f"  max {1000 * max(stalls, default=0):5.1f}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rates", default="1000,5000,20000,0")
    parser.add_argument("--config", type=Path, help="drconsole config (default: local only)")
    parser.add_argument("--node", help="node of --config to run on")
    parser.add_argument("--python", default=None, help="python on the node (default: python3)")
    parser.add_argument("--ui", action="store_true", help="also through the Textual job log screen")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="drconsole-bench-") as tmp:
        journal = Journal(Path(tmp) / "journal")
        if args.config is not None:
            config = load_config(args.config)
            node = config.node(args.node)
            transport = open_transport(node, connect_timeout=10)
            python = args.python or "python3"
            where = f"node {node.name} ({transport.__class__.__name__})"
        else:
            config = Config(
                console=ConsoleConfig(),
                nodes=(NodeConfig(name="local", role=NodeRole.PRIMARY, job_dir=f"{tmp}/jobs"),),
            )
            node = config.node("local")
            transport = LocalTransport("local")
            python = args.python or sys.executable
            where = "the local transport"
        manager = JobManager({node.name: transport}, journal, config)
        print(f"tail pipeline on {where}, {args.seconds:g} s per rate, lines of ~90 bytes")
        try:
            for rate_text in args.rates.split(","):
                line = await run_one(manager, node.name, python, float(rate_text), args.seconds)
                print(line, flush=True)
            if args.ui:
                for rate_text in args.rates.split(","):
                    rate = float(rate_text)
                    print(await run_ui(manager, node.name, python, rate, args.seconds), flush=True)
        finally:
            await transport.close()


if __name__ == "__main__":
    asyncio.run(main())
