#!/usr/bin/env python3
"""Record real Barman output for every tested Barman version, each on a lab of its own.

    .venv/bin/python scripts/record_versions.py [VERSION ...]     (root; default: every tested one)

For each version a lab is built beside any other (base /var/tmp/drconsole-lab-rec, 127.0.0.242-244,
ports 2452/5663, users drlabrec-…) with that Barman from PyPI, scripts/record_barman.py records
it (3.19.1 into tests/recordings/, others into tests/recordings/barman-<version>/), and the lab is
brought down again.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dr_console.core.barman_versions import TESTED_VERSIONS  # noqa: E402
from dr_console.lab.lab import Lab  # noqa: E402
from dr_console.lab.settings import LabSettings  # noqa: E402

BASE = Path("/var/tmp/drconsole-lab-rec")


def settings(version: str) -> LabSettings:
    return (
        LabSettings(base_dir=BASE, ssh_port=2452, pg_port=5663, barman_version=version)
        .with_address_base("127.0.0.242")
        .with_user_prefix("drlabrec")
        .validate()
    )


def main(argv: list[str]) -> int:
    versions = argv or list(TESTED_VERSIONS)
    for version in versions:
        lab = Lab(settings(version), lambda message: print(message, flush=True))
        print(f"== Barman {version}", flush=True)
        try:
            lab.up()
            subprocess.run(
                [sys.executable, str(REPO / "scripts" / "record_barman.py"),
                 "--lab-dir", str(BASE)],
                check=True,
            )
        finally:
            lab.down()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
