"""Issue 8 benchmarks on the fleet lab (slot 6): prints figures, asserts nothing.

    .venv/bin/python -m bench.fleet up --servers 30
    .venv/bin/python -m bench.fleet_bench [--sizes 1,10,30] [--skip ui,bigfile,runcheck]

For each N (the first N servers of the fleet, on both nodes; the console config restricts each
node to them, so Barman is asked about those N only):
- Barman processes started per node, counted independently of the collector's counters by a
  /proc sampler (every 20 ms; a barman run lasts >= 0.2 s), and node CPU seconds: the delta of
  utime+stime+cutime+cstime over the live processes of the node's OS user. Commands run over
  ssh are reaped by their sshd session process, which lives as long as the connection, so their
  CPU lands in its cutime; the lab's cron loops are paused meanwhile (receive-wal keeps running
  and its idle CPU is included on bserver).
- cycle wall time, and the console's RSS (VmRSS of this process, which is the console core).
- the naive loop in the same run: `barman -f json status S`, `list-backups S`, `check S` per
  server, one process each, over one pooled ssh connection per node (which flatters it).
Then: `drconsole --run check` on the largest N vs the naive loop's time; key press -> repaint
latency in the real app (headless) while it polls the fleet and follows a job log written at
5,000 lines/s; opening and following a 1 GB barman.log.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from bench.fleet import fleet_lab_settings
from dr_console.config import Config, load_config
from dr_console.core.barman import BarmanClient
from dr_console.core.collector import CHECK_EVERY, Collector
from dr_console.core.transport import open_transport
from dr_console.lab import console_config
from dr_console.lab.lab import Lab
from dr_console.lab.settings import PASSIVE_NODE, PRIMARY_NODE

NODES = (PRIMARY_NODE, PASSIVE_NODE)
TICK = os.sysconf("SC_CLK_TCK")


# --- measuring the nodes -------------------------------------------------------------------------


def user_cpu(uid: int) -> dict[str, int]:
    """pid -> utime+stime+cutime+cstime (ticks) of UID's live processes."""
    out: dict[str, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        out[entry.name + ":" + fields[19].decode()] = sum(int(x) for x in fields[11:15])
    return out


def cpu_delta(before: dict[str, int], after: dict[str, int]) -> float:
    """CPU seconds spent between two readings by the processes alive at the second one (a
    process that ended in between took its reaped children's time with it: a closed ssh
    session or a put-wal's, none of the console's commands, whose sessions stay open)."""
    return sum(v - before.get(k, 0) for k, v in after.items()) / TICK


def machine_cpu() -> float:
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / TICK


class BarmanCounter:
    """Counts barman processes started by some uids (a /proc sampler thread)."""

    def __init__(self, uids: dict[int, str]) -> None:
        self.uids = uids
        self.seen: dict[str, set[tuple[int, str]]] = {n: set() for n in uids.values()}
        self._known: set[str] = set()
        self._barman_pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _scan(self) -> None:
        for entry in os.scandir("/proc"):
            name = entry.name
            if not name.isdigit() or name in self._known:
                continue
            try:
                uid = entry.stat().st_uid
                if uid not in self.uids:
                    self._known.add(name)  # barman runs as a child of a session of the uid
                    continue
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
                with open(f"/proc/{name}/stat", "rb") as f:
                    stat = f.read().rsplit(b")", 1)[1].split()
                start, parent = stat[19].decode(), int(stat[1])
            except OSError:
                continue
            # a shell or ssh session may exec barman later: only a barman pid is settled
            if b"put-wal" in argv:
                self._known.add(name)  # PostgreSQL's archive_command at work, not a poller
            elif any(a.endswith(b"/barman") or a == b"barman" for a in argv[:2]):
                self._known.add(name)
                if parent in self._barman_pids:
                    continue  # barman's fork before it execs ssh, rsync, pg_receivewal...
                self._barman_pids.add(int(name))
                self.seen[self.uids[uid]].add((int(name), start))

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._scan()

    def start(self) -> None:
        self._scan()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def counts(self) -> dict[str, int]:
        self._scan()
        return {n: len(s) for n, s in self.seen.items()}


@dataclass
class Sample:
    wall: float
    cpu: dict[str, float]
    procs: dict[str, float]
    machine: float


@dataclass
class Meter:
    uids: dict[str, int]
    counter: BarmanCounter
    samples: dict[str, list[Sample]] = field(default_factory=dict)

    async def measure(self, label: str, work: Callable[[], Awaitable[Any]]) -> Any:
        procs0 = self.counter.counts()
        cpu0 = {n: user_cpu(u) for n, u in self.uids.items()}
        m0, t0 = machine_cpu(), time.perf_counter()
        result = await work()
        wall = time.perf_counter() - t0
        await asyncio.sleep(0.1)  # let the sampler see the last process
        procs1 = self.counter.counts()
        sample = Sample(
            wall=wall,
            cpu={n: cpu_delta(cpu0[n], user_cpu(u)) for n, u in self.uids.items()},
            procs={n: procs1[n] - procs0[n] for n in self.uids},
            machine=machine_cpu() - m0,
        )
        self.samples.setdefault(label, []).append(sample)
        return result

    def median(self, label: str) -> Sample:
        rows = self.samples[label]
        return Sample(
            wall=statistics.median(r.wall for r in rows),
            cpu={n: statistics.median(r.cpu[n] for r in rows) for n in self.uids},
            procs={n: statistics.median(r.procs[n] for r in rows) for n in self.uids},
            machine=statistics.median(r.machine for r in rows),
        )


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# --- configs -------------------------------------------------------------------------------------


def fleet_config(lab: Lab, names: list[str], path: Path) -> Config:
    s = lab.settings
    doc = console_config.document(s)
    conninfo = doc["servers"][0]["conninfo"]
    for node in doc["nodes"]:
        node["servers"] = list(names)
    doc["servers"] = [{"name": n, "conninfo": conninfo} for n in names]
    path.write_text(tomli_w.dumps(doc), encoding="utf-8")
    path.chmod(0o600)
    return load_config(path)


# --- the naive loop ------------------------------------------------------------------------------


async def naive_node(config: Config, node_name: str, names: list[str]) -> None:
    node = config.node(node_name)
    transport = open_transport(node, connect_timeout=10)
    client = BarmanClient(transport, barman=node.barman, timeout=300)
    # closed after the measurement: the sshd session that reaped the commands must be alive
    naive_transports.append(transport)
    for server in names:
        for args in (["status", server], ["list-backups", server], ["check", server]):
            await transport.run(client.argv(*args), 300)


naive_transports: list[Any] = []


async def naive_cycle(config: Config, names: list[str]) -> None:
    await asyncio.gather(*(naive_node(config, n, names) for n in NODES))


async def close_naive() -> None:
    while naive_transports:
        await naive_transports.pop().close()


# --- collection ----------------------------------------------------------------------------------


def row(label: str, s: Sample) -> str:
    cpu = "  ".join(f"{s.procs[n]:>5.2f} {s.cpu[n]:>7.2f}      " for n in NODES)
    return f"  {label:<36}{cpu}  {s.wall:>8.2f}  {s.machine:>8.2f}"


async def bench_size(lab: Lab, meter: Meter, names: list[str], tmp: Path, rounds: int) -> None:
    n = len(names)
    config = fleet_config(lab, names, tmp / f"fleet-{n}.toml")
    console = config.console
    collector = Collector(config)
    rss0 = rss_mb()
    try:
        await meter.measure(f"{n}:first", lambda: collector.collect(force_slow=True))
        for _ in range(rounds):
            await meter.measure(f"{n}:fast", lambda: collector.collect())

            async def slow() -> None:
                await asyncio.gather(*(
                    asyncio.gather(collector.barman_client(node).status(names),
                                   collector.barman_client(node).list_backups(names))
                    for node in NODES))

            async def check() -> None:
                await asyncio.gather(*(collector.barman_client(node).check(names)
                                       for node in NODES))

            await meter.measure(f"{n}:slow", slow)
            await meter.measure(f"{n}:check", check)
            await meter.measure(f"{n}:full", lambda: collector.collect(force_slow=True))
        rss = rss_mb()
    finally:
        await collector.close()
    await asyncio.sleep(1.0)  # the sessions of closed connections end
    naive_rounds = 1 if n >= 30 else rounds
    for _ in range(naive_rounds):
        await meter.measure(f"{n}:naive", lambda: naive_cycle(config, names))
        await close_naive()

    fast, slow_s, check_s = (meter.median(f"{n}:{k}") for k in ("fast", "slow", "check"))
    full, naive = meter.median(f"{n}:full"), meter.median(f"{n}:naive")
    per_slow = console.slow_refresh_interval / console.refresh_interval
    per_check = per_slow * CHECK_EVERY
    amortized = Sample(
        wall=fast.wall,
        cpu={k: fast.cpu[k] + slow_s.cpu[k] / per_slow + check_s.cpu[k] / per_check
             for k in NODES},
        procs={k: slow_s.procs[k] / per_slow + check_s.procs[k] / per_check for k in NODES},
        machine=fast.machine + slow_s.machine / per_slow + check_s.machine / per_check,
    )
    print(f"\nN = {n} servers per node  (rounds: {rounds}; naive {naive_rounds}; "
          f"console RSS {rss:.1f} MB, +{rss - rss0:.1f} MB for this collector)")
    head = "  ".join(f"{node[:10]:>10} procs / CPU s" for node in NODES)
    print(f"  {'':<36}{head}  {'wall s':>8}  {'machine CPU s':>8}")
    print(row("drconsole fast cycle", fast))
    print(row("status+list-backups (each slow)", slow_s))
    print(row(f"check (every {CHECK_EVERY}th slow)", check_s))
    print(row("full forced cycle (--run, 'r')", full))
    cadence = (f"{console.refresh_interval:g}/{console.slow_refresh_interval:g}/"
               f"{console.slow_refresh_interval * CHECK_EVERY:g} s")
    print(row(f"amortized per fast cycle ({cadence})", amortized))
    print(row("naive loop, one cycle", naive))
    for label, s in (("fast cycle", fast), ("amortized", amortized), ("full forced", full)):
        ratios = []
        for node in NODES:
            ratios.append(f"{node} {naive.cpu[node] / s.cpu[node]:.1f}x" if s.cpu[node] > 0
                          else f"{node} inf")
        print(f"  naive / {label}: node CPU " + ", ".join(ratios)
              + f"; wall {naive.wall / s.wall:.1f}x")


# --- --run check ---------------------------------------------------------------------------------


def bench_run_check(config_path: Path, naive_wall: float) -> None:
    argv = [str(Path(sys.prefix) / "bin" / "drconsole"), "--config", str(config_path),
            "--run", "check"]
    started = time.perf_counter()
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    wall = time.perf_counter() - started
    print(f"\n--run check on {config_path.name}: {wall:.2f} s (exit {cp.returncode}, "
          f"{len(cp.stdout.splitlines())} result lines); naive loop {naive_wall:.2f} s: "
          f"{naive_wall / wall:.1f}x faster")
    if cp.returncode not in (0, 1, 2):
        print("  stderr: " + cp.stderr.strip()[-400:])


# --- UI latency ----------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def bench_ui(config: Config, rate: float, presses: int) -> None:
    from textual import events
    from textual.widgets import DataTable

    from bench.log_tail_bench import WRITER
    from dr_console.tui.launch import make_app
    from dr_console.tui.screens.job_log import JobLogScreen
    from dr_console.tui.widgets.job_log import JobLog

    app = make_app(config)
    displays: list[tuple[float, Any]] = []
    original = app._display
    probe: list[Callable[[], Any]] = [lambda: None]

    def display(screen: Any, renderable: Any) -> None:
        original(screen, renderable)
        if renderable is not None and hasattr(renderable, "render_segments"):
            renderable.render_segments(app.console)  # what a terminal would be sent
        displays.append((time.perf_counter(), probe[0]()))

    app._display = display  # type: ignore[method-assign]
    results: dict[str, list[float]] = {}
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 120
        while app.polls < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert app.jobs is not None
        count = int(rate * 600)
        job = await app.jobs.start(PRIMARY_NODE, None, "bench",
                                   ["python3", "-c", WRITER, str(rate), str(count)])

        async def tail_in_background() -> None:
            assert app.jobs is not None
            async for _ in app.jobs.tail(job, from_start=False):
                pass

        async def press(key: str, changed: Callable[[Any, Any], bool], label: str) -> None:
            before = probe[0]()
            t0 = time.perf_counter()
            app.post_message(events.Key(key, None))
            limit = t0 + 5
            while time.perf_counter() < limit:
                hit = next((t for t, v in displays if t > t0 and changed(before, v)), None)
                if hit is not None:
                    results.setdefault(label, []).append(hit - t0)
                    break
                await asyncio.sleep(0.001)
            else:
                results.setdefault(label + " (no repaint in 5 s)", []).append(5.0)
            displays.clear()
            await asyncio.sleep(0.05)

        stalls: list[float] = []

        async def ticker() -> None:  # how late a 10 ms sleep wakes up: event-loop stalls
            while True:
                before = time.perf_counter()
                await asyncio.sleep(0.01)
                stalls.append(time.perf_counter() - before - 0.01)

        tick_task = asyncio.create_task(ticker())
        cpu0, wall0 = time.process_time(), time.perf_counter()
        # 1. dashboard: cursor moves in the fleet table while polling and a tail runs
        tail_task = asyncio.create_task(tail_in_background())
        await pilot.pause(1.0)
        table = app.screen.query(DataTable).first()
        table.focus()
        await pilot.pause(0.2)
        probe[0] = lambda: table.cursor_row
        await press("down", lambda a, b: a != b, "warm-up")
        for i in range(presses):
            await press("down" if (i // 10) % 2 == 0 else "up", lambda a, b: a != b, "fleet table")
        tail_task.cancel()
        # 2. the job log screen showing the 5,000 lines/s log
        await app.push_screen(JobLogScreen(app.jobs, job, from_start=False))
        await pilot.pause(1.0)
        log = app.screen.query_one(JobLog)
        probe[0] = lambda: log.scroll_y
        await press("up", lambda a, b: True, "warm-up")  # leaves the followed end
        for _ in range(presses):
            await press("up", lambda a, b: b == a - 1, "job log scroll")
        polls = app.polls
        busy = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        tick_task.cancel()
        await app.jobs.cancel(job)
    print(f"\nkey -> repaint in the real app (headless, 120x40, {len(config.servers)} servers x "
          f"{len(config.nodes)} nodes polled every {config.console.refresh_interval:g} s, "
          f"{polls} polls; a job log written at {rate:,.0f} lines/s followed):")
    print(f"  console process CPU {100 * busy:.0f}% of one core; event-loop stalls (10 ms "
          f"ticker lateness) p50 {1000 * pct(stalls, 0.5):.1f} ms, p95 "
          f"{1000 * pct(stalls, 0.95):.1f} ms, max {1000 * max(stalls, default=0):.1f} ms; "
          f"machine load {os.getloadavg()[0]:.1f}")
    for label, values in results.items():
        if label.startswith("warm-up"):
            continue
        print(f"  {label:<28} n={len(values):>3}  p50 {1000 * pct(values, 0.5):6.1f} ms  "
              f"p95 {1000 * pct(values, 0.95):6.1f} ms  max {1000 * max(values):6.1f} ms")


# --- 1 GB barman.log -----------------------------------------------------------------------------


def make_big_log(path: Path, size: int) -> None:
    line = (b"2026-11-30 17:19:21,203 [8873] barman.wal_archiver INFO: Archiving segment 1 of 1 "
            b"from streaming: pgserver/000000010000000000000005\n")
    block = line * (4 * 1024 * 1024 // len(line))
    with open(path, "wb") as f:
        written = 0
        while written < size:
            f.write(block)
            written += len(block)


async def bench_bigfile(tmp: Path) -> None:
    from dr_console.core.transport_local import LocalTransport

    path = tmp / "barman.log"
    t0 = time.perf_counter()
    make_big_log(path, 1024**3)
    size = path.stat().st_size
    print(f"\n1 GB barman.log ({size / 1024**3:.2f} GiB, written in "
          f"{time.perf_counter() - t0:.1f} s; page cache state: as left by the write)")
    transport = LocalTransport("local")
    for label, argv in (
        ("tail -n 200 -F (reads from the end)",
         ["tail", "-n", "200", "-s", "0.1", "-F", "--", str(path)]),
        ("jobs.TAILER way: wc -l, then tail -n +K -F",
         ["sh", "-c", 'n=$(wc -l < "$1"); n=$((n > 199 ? n - 199 : 1)); '
          'exec tail -n "+$n" -s 0.1 -F -- "$1"', "x", str(path)]),
    ):
        rss0 = rss_mb()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        got = 0
        opened_at = followed_at = None
        async with transport.stream(argv) as lines:
            async for text in lines:
                got += 1
                if got == 200:
                    opened_at = time.perf_counter() - started
                    with open(path, "ab") as f:
                        f.write(b"2026-11-30 18:00:00,000 [1] drconsole MARK: appended\n")
                    mark = time.perf_counter()
                if "MARK: appended" in text:
                    followed_at = time.perf_counter() - mark
                    break
                if time.perf_counter() - started > 60:
                    break
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        print(f"  {label:<44} last 200 lines in {1000 * (opened_at or float('nan')):7.1f} ms; "
              f"an appended line {1000 * (followed_at or float('nan')):6.1f} ms later; console "
              f"RSS +{rss_mb() - rss0:.1f} MB; reader CPU "
              f"{(ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime):.2f} s")
    await transport.close()
    path.unlink()


# --- main ----------------------------------------------------------------------------------------


async def main(sizes: list[int], skip: set[str], rounds: int, presses: int) -> None:
    lab = Lab(fleet_lab_settings())
    if not lab.status(with_backups=False).present:
        sys.exit("the fleet lab is not up: .venv/bin/python -m bench.fleet up --servers 30")
    from dr_console.lab.fleet import status as fleet_status

    all_names: list[str] = fleet_status(lab)["servers"]
    if max(sizes) > len(all_names):
        sys.exit(f"the fleet has {len(all_names)} servers; run bench.fleet up --servers "
                 f"{max(sizes)}")
    tmp = Path(tempfile.mkdtemp(prefix="fleet-bench-", dir=lab.settings.console_dir))
    uids = {node: lab.account(node).uid for node in NODES}
    counter = BarmanCounter({uid: node for node, uid in uids.items()})
    counter.start()
    meter = Meter(uids, counter)
    print(f"fleet lab {lab.settings.base_dir}: {len(all_names)} servers per node; "
          f"{os.cpu_count()} cores; load {os.getloadavg()[0]:.1f} at start; cron loops paused")
    for node in NODES:
        lab.pause_cron(node)
    try:
        for n in sizes:
            await bench_size(lab, meter, all_names[:n], tmp, rounds)
        big = max(sizes)
        if "runcheck" not in skip:
            bench_run_check(tmp / f"fleet-{big}.toml", meter.median(f"{big}:naive").wall)
        if "ui" not in skip:  # still paused: the fleet's own cron loops would saturate 2 cores
            await bench_ui(load_config(tmp / f"fleet-{big}.toml"), 5000.0, presses)
    finally:
        for node in NODES:
            lab.resume_cron(node)
        counter.stop()
    if "bigfile" not in skip:
        await bench_bigfile(tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nload {os.getloadavg()[0]:.1f} at the end; max RSS of this process "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_bench", description=__doc__)
    parser.add_argument("--sizes", default="1,10,30")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--presses", type=int, default=40)
    parser.add_argument("--skip", default="", help="comma list of: runcheck, ui, bigfile")
    ns = parser.parse_args()
    asyncio.run(main([int(x) for x in ns.sizes.split(",")], set(ns.skip.split(",")) - {""},
                     ns.rounds, ns.presses))
