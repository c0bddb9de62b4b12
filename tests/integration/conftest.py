"""The shared lab for integration tests.

`lab` (session scope) is the DEFAULT lab (/var/tmp/drconsole-lab, 127.0.0.2-4, ports 2222/5433),
brought up once per session; a lab that already runs is reused as it is. At the end of the
session the lab is brought down only if this session built it, and never when
DRCONSOLE_KEEP_LAB=1, so parallel sessions and a developer's running lab are left alone.
Tests that pause cron (lab.pause_cron) or stop a component must restore it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from dr_console.lab.errors import LabError
from dr_console.lab.lab import Lab
from dr_console.lab.settings import LabSettings


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (run the integration tests with `make test`)")
    the_lab = Lab(LabSettings())
    already_there = the_lab.status(with_backups=False).present
    try:
        the_lab.up()
    except LabError as exc:
        pytest.fail(f"drconsole lab up failed: {exc}", pytrace=False)
    yield the_lab
    if not already_there and os.environ.get("DRCONSOLE_KEEP_LAB") != "1":
        the_lab.down()
