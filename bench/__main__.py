"""`make bench`: the quick benchmarks against the default lab (brought up if needed).

They print figures and assert nothing. The fleet benchmark of issue 8 (30 Barman servers on a lab
of its own, about 10 minutes to build) is separate:
    python -m bench.fleet up --servers 30
    python -m bench.fleet_bench
    python -m bench.fleet down --lab
"""

from __future__ import annotations

import subprocess
import sys

from dr_console.lab.lab import Lab

BENCHES = (
    ["bench/collection_bench.py", "--rounds", "5"],
    ["bench/transport_bench.py"],
    ["bench/log_tail_bench.py"],
)


def main() -> int:
    config = Lab().up()
    status = 0
    for argv in BENCHES:
        print(f"\n=== {' '.join(argv)}", flush=True)
        extra = ["--config", str(config)] if argv[0] == "bench/collection_bench.py" else []
        status |= subprocess.run([sys.executable, *argv, *extra], check=False).returncode
    print("\nthe 30-server fleet benchmark: python -m bench.fleet --help")
    return status


if __name__ == "__main__":
    sys.exit(main())
