"""Leftovers of interrupted drills, found and removed for real on this host (local transport)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from dr_console.core.drill_leftovers import clear_leftovers, find_leftovers
from dr_console.core.transport import LocalTransport

LOCAL = LocalTransport(name="here")


def _pattern(drills: Path) -> re.Pattern[str]:
    return re.compile(re.escape(str(drills)) + r"/[A-Za-z0-9_.-]+-\d{8}T\d{6}-[0-9a-f]{6}")


def _drill(drills: Path, name: str, deadline: float | None) -> Path:
    root = drills / name
    (root / "data").mkdir(parents=True)
    if deadline is not None:
        (root / "deadline").write_text(f"{int(deadline)}\n")
    return root


async def test_only_drills_past_their_deadline_are_removed_and_reported(tmp_path: Path) -> None:
    drills = tmp_path / "drills"
    past = _drill(drills, "pgserver-20261201T101010-abc123", time.time() - 60)
    running = _drill(drills, "pgserver-20261203T101010-def456", time.time() + 600)
    old = _drill(drills, "pgstream-20261101T101010-0a0b0c", None)  # an older drconsole's
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    other = drills / "not-a-drill"
    other.mkdir()
    found = await find_leftovers(LOCAL, str(drills), _pattern(drills), 30)
    assert sorted(f.directory for f in found) == sorted([str(past), str(old)])
    assert all(f.pid is None for f in found)
    said = await clear_leftovers(LOCAL, str(drills), _pattern(drills), "/nonexistent", 30)
    assert sorted(said) == sorted(
        f"leftover of an interrupted drill {d.name}; removed {d}" for d in (past, old)
    )
    assert not past.exists() and not old.exists()
    assert running.exists() and other.exists()
