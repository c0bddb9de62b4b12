"""Cost of one collection of the lab: drconsole's collector vs the naive per-server loop.

    .venv/bin/python bench/collection_bench.py [--config FILE] [--rounds N]

Prints, per approach: Barman processes started per cycle, wall time per cycle (median), and the
machine's CPU seconds spent per cycle (from /proc/stat: everything the cycle made the lab's
Barman, sshd and PostgreSQL do, plus the console itself; the lab runs on this machine).
It asserts nothing: machines here are noisy, so run it on a quiet lab and read the medians.

"naive" = what a script around the CLI does: `barman -f json status S`, `list-backups S` and
`check S` per server per node, each a new barman process (run over our pooled ssh connection,
which only flatters the naive loop).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from dr_console.config import Config, load_config
from dr_console.core.barman import BarmanClient
from dr_console.core.collector import Collector
from dr_console.core.transport import open_transport

DEFAULT_CONFIG = Path("/var/tmp/drconsole-lab/drconsole.toml")


def cpu_seconds() -> float:
    """Non-idle CPU time of the whole machine so far."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / 100.0  # USER_HZ is 100 on Linux


async def naive_cycle(config: Config, servers: dict[str, list[str]]) -> int:
    calls = 0
    for node in config.nodes:
        transport = open_transport(node, connect_timeout=10)
        client = BarmanClient(transport, barman=node.barman, timeout=120)
        try:
            for server in servers[node.name]:
                for args in (["status", server], ["list-backups", server], ["check", server]):
                    await transport.run(client.argv(*args), 120)
                    calls += 1
        finally:
            await transport.close()
    return calls


async def main(config_path: Path, rounds: int) -> None:
    config = load_config(config_path)
    collector = Collector(config)
    try:
        first = await collector.collect(force_slow=True)
        servers = {name: sorted(node.servers) for name, node in first.nodes.items()}
        n_servers = sum(len(v) for v in servers.values())
        print(f"lab: {len(config.nodes)} nodes, {n_servers} server entries")

        results: dict[str, list[tuple[float, float, int]]] = {"fast": [], "full": [], "naive": []}
        for _ in range(rounds):
            for kind in ("fast", "full"):
                calls = collector.stats.barman_calls
                cpu, wall = cpu_seconds(), time.perf_counter()
                await collector.collect(force_slow=(kind == "full"))
                results[kind].append(
                    (
                        time.perf_counter() - wall,
                        cpu_seconds() - cpu,
                        collector.stats.barman_calls - calls,
                    )
                )
            cpu, wall = cpu_seconds(), time.perf_counter()
            calls = await naive_cycle(config, servers)
            results["naive"].append((time.perf_counter() - wall, cpu_seconds() - cpu, calls))
    finally:
        await collector.close()

    print(f"{'approach':<28}{'barman procs':>14}{'wall s (med)':>14}{'CPU s (med)':>14}")
    labels = {
        "fast": "drconsole fast cycle",
        "full": "drconsole full (forced slow)",
        "naive": "naive per-server loop",
    }
    medians = {}
    for kind, rows in results.items():
        wall = statistics.median(r[0] for r in rows)
        cpu = statistics.median(r[1] for r in rows)
        procs = statistics.median(r[2] for r in rows)
        medians[kind] = (wall, cpu, procs)
        print(f"{labels[kind]:<28}{procs:>14.0f}{wall:>14.3f}{cpu:>14.3f}")
    naive_cpu = medians["naive"][1]
    for kind in ("fast", "full"):
        cpu = medians[kind][1]
        ratio = naive_cpu / cpu if cpu > 0 else float("inf")
        print(
            f"naive / {kind}: {ratio:.1f}x less CPU, "
            f"{medians['naive'][0] / medians[kind][0]:.1f}x less wall time"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--rounds", type=int, default=5)
    ns = parser.parse_args()
    asyncio.run(main(ns.config, ns.rounds))
