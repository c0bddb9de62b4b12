"""Fleet harness: N Barman servers on the primary node and N passive copies, on a lab of its own.

    .venv/bin/python -m bench.fleet up --servers 30     # brings the lab up first when needed
    .venv/bin/python -m bench.fleet down                # removes the extra servers
    .venv/bin/python -m bench.fleet down --lab          # ... and brings the whole lab down

The lab is slot 6 (/var/tmp/drconsole-lab-6, 127.0.0.62-64, ssh 2282, PostgreSQL 5493, users
drlab6-…), the same mapping as the integration fixture's DRCONSOLE_LAB_SLOT=6; never the default
lab, which other sessions use. See dr_console/lab/fleet.py for what a fleet server is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dr_console.lab.errors import LabError
from dr_console.lab.fleet import Fleet
from dr_console.lab.lab import Lab
from dr_console.lab.settings import LabSettings

BASE_DIR = Path("/var/tmp/drconsole-lab-6")


def fleet_lab_settings() -> LabSettings:
    return (
        LabSettings(base_dir=BASE_DIR, ssh_port=2282, pg_port=5493)
        .with_address_base("127.0.0.62")
        .with_user_prefix("drlab6")
        .validate()
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__)
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--servers", type=int, default=30, help="servers per node (default 30)")
    parser.add_argument("--lab", action="store_true", help="down: bring the lab down too")
    args = parser.parse_args(argv)
    lab = Lab(fleet_lab_settings(), log)
    try:
        if args.action == "up":
            lab.up()
            names = Fleet(lab, log).up(args.servers)
            print(" ".join(names))
        else:
            if lab.status(with_backups=False).present:
                Fleet(lab, log).down()
                if args.lab:
                    lab.down()
    except LabError as exc:
        print(f"bench.fleet {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
