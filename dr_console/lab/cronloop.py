"""The lab's stand-in for cron: run `barman -q cron` every N seconds until SIGTERM.

Standard library only: `lab up` copies this file into <base>/bin and a Barman user runs it with
the system Python, so it never needs to import the project. While the pause file exists the loop
skips its runs (tests use that to hold a node still). SIGTERM ends it at once, or as soon as a
running `barman cron` (about a second) returns.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="drlab-cronloop")
    parser.add_argument("--barman", required=True)
    parser.add_argument("--interval", type=float, required=True)
    parser.add_argument("--pause-file", required=True)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.is_set():
        if not os.path.exists(args.pause_file):
            started = time.strftime("%Y-%m-%d %H:%M:%S")
            try:
                cp = subprocess.run(
                    [args.barman, "-q", "cron"],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=args.timeout,
                    check=False,
                )
                if cp.returncode != 0 or cp.stdout.strip() or cp.stderr.strip():
                    print(f"{started} barman cron exit {cp.returncode}: "
                          f"{(cp.stdout + cp.stderr).strip()}", flush=True)
            except subprocess.TimeoutExpired:
                print(f"{started} barman cron timed out after {args.timeout:g} s", flush=True)
            except OSError as exc:
                print(f"{started} cannot run barman: {exc}", flush=True)
        stop.wait(args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
