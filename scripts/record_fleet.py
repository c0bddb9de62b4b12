"""Record real FleetSnapshots from the running lab for the TUI's deterministic tests.

    .venv/bin/python scripts/record_fleet.py [LAB_DIR]   (root; the default lab, or the lab in
                                                          LAB_DIR, must be up with Barman 3.19.1)

Writes tests/recordings/fleet-lab.json (the lab as it is, healthy) and
tests/recordings/fleet-lab-degraded.json (receive-wal stopped on bserver and the passive node's
cron paused while the primary archived more WAL), then puts the lab back as it was.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from dr_console.config import load_config
from dr_console.core.collector import Collector
from dr_console.core.snapshot_io import fleet_to_json
from dr_console.lab.lab import Lab
from dr_console.models import FleetSnapshot

OUT = Path(__file__).resolve().parent.parent / "tests" / "recordings"
SERVER = "pgserver"


def collect(lab: Lab) -> FleetSnapshot:
    async def once() -> FleetSnapshot:
        collector = Collector(load_config(lab.config_path))
        try:
            return await collector.collect(force_slow=True)
        finally:
            await collector.close()

    return asyncio.run(once())


def receive_wal_running(lab: Lab) -> bool:
    data = lab.barman_json("bserver", "list-processes", SERVER)
    return any(p.get("name") == "receive-wal" for p in data.get(SERVER, []))


def main() -> int:
    lab = Lab.at(Path(sys.argv[1])) if len(sys.argv) > 1 else Lab()
    if not lab.status(with_backups=False).present:
        print(f"no lab at {lab.settings.base_dir}: run `drconsole lab up` first", file=sys.stderr)
        return 2
    healthy = collect(lab)
    (OUT / "fleet-lab.json").write_text(fleet_to_json(healthy) + "\n")
    print("wrote", OUT / "fleet-lab.json")

    lab.pause_cron("bserver")
    lab.pause_cron("geobserver")
    try:
        for _ in range(3):
            lab.barman("bserver", "switch-wal", "--force", "--archive", SERVER, json=False)
        lab.barman("bserver", "receive-wal", "--stop", SERVER, json=False)
        deadline = time.monotonic() + 60
        while receive_wal_running(lab) and time.monotonic() < deadline:
            time.sleep(1)
        degraded = collect(lab)
        (OUT / "fleet-lab-degraded.json").write_text(fleet_to_json(degraded) + "\n")
        print("wrote", OUT / "fleet-lab-degraded.json")
    finally:
        lab.resume_cron("bserver")
        lab.resume_cron("geobserver")
        lab.barman("bserver", "cron", json=False)
        lab.barman("geobserver", "cron", json=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
