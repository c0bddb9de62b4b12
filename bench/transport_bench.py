"""Wall time of N commands on a Barman node: one pooled asyncssh connection vs a fresh `ssh` each.

Run against the lab (defaults) or any node:
    .venv/bin/python bench/transport_bench.py [--target USER@HOST] [--port P] [--key FILE]
        [--known-hosts FILE] [-n 20]
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

from dr_console.config import SshSpec
from dr_console.core.transport import SshTransport, TransportError

LAB = Path("/var/tmp/drconsole-lab/console")


def _args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--target", default="drlab-bmuser@127.0.0.3")
    p.add_argument("--port", type=int, default=2222)
    p.add_argument("--key", type=Path, default=LAB / "id_ed25519")
    p.add_argument("--known-hosts", type=Path, default=LAB / "known_hosts")
    p.add_argument("-n", type=int, default=20)
    return p.parse_args(argv)


async def _pooled(spec: SshSpec, n: int) -> tuple[float, float, list[float]]:
    transport = SshTransport("bench", spec, connect_timeout=10)
    try:
        started = time.perf_counter()
        await transport.run(["true"], timeout=30)  # includes the one handshake
        first = time.perf_counter() - started
        each = []
        for _ in range(n - 1):
            t0 = time.perf_counter()
            result = await transport.run(["true"], timeout=30)
            each.append(time.perf_counter() - t0)
            if result.returncode != 0:
                raise SystemExit(f"`true` failed: {result.stderr}")
        return time.perf_counter() - started, first, each
    finally:
        await transport.close()


def _fresh(a: argparse.Namespace) -> tuple[float, list[float]]:
    argv = [
        "ssh", "-p", str(a.port), "-i", str(a.key), "-o", "BatchMode=yes",
        "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={a.known_hosts}",
        "-o", "StrictHostKeyChecking=yes", "-o", "ControlMaster=no", "-o", "ControlPath=none",
        a.target, "true",
    ]  # fmt: skip
    each = []
    started = time.perf_counter()
    for _ in range(a.n):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, timeout=30, stdin=subprocess.DEVNULL)
        each.append(time.perf_counter() - t0)
    return time.perf_counter() - started, each


def main(argv: list[str]) -> int:
    a = _args(argv)
    user, _, host = a.target.rpartition("@")
    spec = SshSpec(
        user=user or None, host=host, port=a.port, key_file=a.key, known_hosts=a.known_hosts
    )
    try:
        total, first, rest = asyncio.run(_pooled(spec, a.n))
    except TransportError as exc:
        print(f"pooled: {exc}", file=sys.stderr)
        return 1
    fresh_total, fresh_each = _fresh(a)
    print(f"{a.n} x `true` on {spec.display()}")
    print(
        f"  pooled asyncssh : {total:6.3f} s total; first (with handshake) {first * 1000:6.1f} ms, "
        f"then median {statistics.median(rest) * 1000:5.1f} ms"
    )
    print(
        f"  fresh ssh each  : {fresh_total:6.3f} s total; median "
        f"{statistics.median(fresh_each) * 1000:5.1f} ms"
    )
    print(f"  speed-up        : {fresh_total / total:4.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
