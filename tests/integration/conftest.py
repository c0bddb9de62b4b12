"""The shared lab for integration tests.

`lab` (session scope) is the DEFAULT lab (/var/tmp/drconsole-lab, 127.0.0.2-4, ports 2222/5433),
or with DRCONSOLE_LAB_SLOT=N (N >= 4) a lab of its own (127.0.0.{10N+2}-{10N+4}, ports 2222+10N and
5433+10N, users drlabN-…, /var/tmp/drconsole-lab-N) so that destructive tests can be developed
side by side; it is brought up once per session; a lab that already runs is reused as it is.
$DRCONSOLE_BARMAN_VERSION chooses the Barman the lab runs (default 3.19.1).
At the end of the session the lab is brought down only if this session built it, and never when
DRCONSOLE_KEEP_LAB=1, so parallel sessions and a developer's running lab are left alone.
Tests that pause cron (lab.pause_cron) or stop a component must restore it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dr_console.lab.errors import LabError
from dr_console.lab.lab import Lab
from dr_console.lab.settings import LabSettings


def barman_version() -> str:
    """The Barman the lab runs: $DRCONSOLE_BARMAN_VERSION (`BARMAN_VERSION=3.10.1 make test`)."""
    return os.environ.get("DRCONSOLE_BARMAN_VERSION") or LabSettings().barman_version


def lab_settings() -> LabSettings:
    slot = os.environ.get("DRCONSOLE_LAB_SLOT", "")
    if not slot:
        return LabSettings(barman_version=barman_version())
    if not slot.isdigit() or not 4 <= int(slot) <= 24:
        raise pytest.UsageError("DRCONSOLE_LAB_SLOT must be a number from 4 to 24")
    n = int(slot)
    return (
        LabSettings(
            base_dir=Path(f"/var/tmp/drconsole-lab-{n}"),
            ssh_port=2222 + 10 * n,
            pg_port=5433 + 10 * n,
            barman_version=barman_version(),
        )
        .with_address_base(f"127.0.0.{10 * n + 2}")
        .with_user_prefix(f"drlab{n}")
    )


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (run the integration tests with `make test`)")
    try:
        settings = lab_settings().validate()
    except LabError as exc:
        raise pytest.UsageError(str(exc)) from None
    the_lab = Lab(settings)
    already_there = the_lab.status(with_backups=False).present
    try:
        the_lab.up()
    except LabError as exc:
        pytest.fail(f"drconsole lab up failed: {exc}", pytrace=False)
    yield the_lab
    if not already_there and os.environ.get("DRCONSOLE_KEEP_LAB") != "1":
        the_lab.down()
