"""Scraping cost, side by side in one run: `drconsole --run metrics --listen` against
prometheus-barman-exporter (PyPI `barman-exporter`), both scraped every --interval seconds for
--minutes, on a running lab.

Measured on the Barman nodes: how many Barman processes each started per node per minute, and
their CPU time (utime + stime from /proc, sampled every 20 ms until each process ends). A
process is attributed by its ancestry: the exporter's process, the sshd sessions drconsole opens,
or the lab's own cron loops (reported apart, the same for both).

    python bench/metrics_bench.py --config /var/tmp/drconsole-lab/drconsole.toml \\
        --exporter /path/to/venv/bin/barman-exporter --minutes 3

The exporter runs on bserver as the Barman user (it calls the barman CLI); its --cache-time
is set to the scrape interval so that its figures are as fresh as a scrape asks (its default,
3600 s, serves hour-old figures and is reported by --exporter-cache).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from dr_console.lab.lab import Lab

TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Seen:
    owner: str
    command: str = ""
    cpu_ticks: int = 0


@dataclass
class Census:
    processes: dict[int, Seen] = field(default_factory=dict)

    def count(self, owner: str, uid: int, uids: dict[int, int]) -> tuple[int, float]:
        picked = [s for pid, s in self.processes.items() if s.owner == owner and uids[pid] == uid]
        return len(picked), sum(s.cpu_ticks for s in picked) / TICK


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, cpu ticks, uid) of a live process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[11]) + int(fields[12]), uid


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _barman_command(cmdline: str) -> str:
    """The Barman subcommand of `python …/barman [-c F] [-f json] [-q] CMD …`."""
    words = cmdline.split()
    start = next((i for i, w in enumerate(words) if w.endswith("/barman")), 0) + 1
    skip = False
    for word in words[start:]:
        if skip:
            skip = False
        elif word in ("-c", "--config", "-f", "--format", "--log-level", "--color"):
            skip = True
        elif not word.startswith("-"):
            return word
    return "?"


def _owner(pid: int, exporter_pid: int) -> str:
    seen = 0
    while pid > 1 and seen < 64:
        if pid == exporter_pid:
            return "exporter"
        line = _cmdline(pid)
        if "cronloop" in line:
            return "cron"
        if line.startswith("sshd:"):
            return "drconsole"
        info = _stat(pid)
        if info is None:
            return "other"
        pid, seen = info[0], seen + 1
    return "other"


def sample(census: Census, uids: dict[int, int], node_uids: set[int], exporter_pid: int,
           stop: threading.Event) -> None:  # fmt: skip
    while not stop.is_set():
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            info = _stat(pid)
            if info is None or info[2] not in node_uids:
                continue
            seen = census.processes.get(pid)
            if seen is None:
                line = _cmdline(pid)
                if "/barman " not in line and not line.rstrip().endswith("/barman"):
                    continue
                seen = Seen(_owner(pid, exporter_pid), _barman_command(line))
                if seen.command == "sync-info":  # the passive node's cron, over ssh
                    seen.owner = "cron"
                census.processes[pid] = seen
                uids[pid] = info[2]
            seen.cpu_ticks = max(seen.cpu_ticks, info[1])
        time.sleep(0.02)


def scrape(urls: list[str], interval: float, stop: threading.Event, errors: list[str]) -> None:
    while not stop.is_set():
        for url in urls:
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    response.read()
            except OSError as exc:
                errors.append(f"{url}: {exc}")
        stop.wait(interval)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the lab's drconsole config")
    parser.add_argument("--exporter", required=True, help="path of barman-exporter")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--exporter-cache", type=float, default=None,
                        help="the exporter's --cache-time (default: the scrape interval)")
    args = parser.parse_args()
    lab = Lab.at(Path(args.config).parent)
    bm, geo = lab.account("bserver"), lab.account("geobserver")
    node_uids = {bm.uid: "bserver", geo.uid: "geobserver"}
    drconsole_port, exporter_port = _free_port(), _free_port()
    drconsole = subprocess.Popen(
        [sys.executable, "-m", "dr_console.cli", "-c", args.config, "--run", "metrics",
         "--listen", f"127.0.0.1:{drconsole_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    cache = args.exporter_cache if args.exporter_cache is not None else args.interval
    env = {"HOME": str(bm.home), "PATH": f"{lab.venv_bin}:/usr/bin:/bin"}
    exporter = subprocess.Popen(
        ["setpriv", f"--reuid={bm.uid}", f"--regid={bm.gid}", "--init-groups",
         args.exporter, "-l", f"127.0.0.1:{exporter_port}", "-c", str(int(cache))],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
    )  # fmt: skip
    time.sleep(3)
    census, uids, stop, errors = Census(), {}, threading.Event(), []
    threads = [
        threading.Thread(target=sample, args=(census, uids, set(node_uids), exporter.pid, stop)),
        threading.Thread(target=scrape, args=([f"http://127.0.0.1:{drconsole_port}/metrics",
                                               f"http://127.0.0.1:{exporter_port}/metrics"],
                                              args.interval, stop, errors)),
    ]  # fmt: skip
    for t in threads:
        t.start()
    time.sleep(args.minutes * 60)
    stop.set()
    for t in threads:
        t.join()
    for proc in (drconsole, exporter):
        proc.terminate()
        proc.wait(timeout=30)
    report = {"minutes": args.minutes, "scrape_interval_s": args.interval,
              "exporter_cache_s": cache, "scrape_errors": errors[:5], "nodes": {}}  # fmt: skip
    for uid, node in node_uids.items():
        per: dict[str, object] = {}
        for owner in ("drconsole", "exporter", "cron"):
            count, cpu = census.count(owner, uid, uids)
            per[owner] = {"barman_processes_per_minute": round(count / args.minutes, 1),
                          "barman_cpu_seconds_per_minute": round(cpu / args.minutes, 2)}
        for owner in ("drconsole", "exporter"):
            commands: dict[str, int] = {}
            for pid, seen in census.processes.items():
                if seen.owner == owner and uids[pid] == uid:
                    commands[seen.command] = commands.get(seen.command, 0) + 1
            per[f"{owner}_commands"] = dict(sorted(commands.items(), key=lambda kv: -kv[1]))
        report["nodes"][node] = per  # type: ignore[index]
    bserver = report["nodes"]["bserver"]  # type: ignore[index]
    mine = bserver["drconsole"]["barman_cpu_seconds_per_minute"] + sum(  # type: ignore[index]
        report["nodes"][n]["drconsole"]["barman_cpu_seconds_per_minute"]  # type: ignore[index]
        for n in ("geobserver",))
    theirs = bserver["exporter"]["barman_cpu_seconds_per_minute"]  # type: ignore[index]
    report["ratio_exporter_cpu_to_drconsole_cpu_all_nodes"] = (
        round(theirs / mine, 1) if mine else None)
    print(json.dumps(report, indent=2))
    print(f"reproduce: {' '.join(sys.argv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
