"""Access to tests/recordings: real Barman output recorded from the lab by
scripts/record_barman.py (regenerate with `make recordings`). Never edit those files by hand."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from dr_console.core.transport_base import CommandResult, LineStream, Transport

RECORDINGS = Path(__file__).resolve().parents[1] / "recordings"


@cache
def load(name: str) -> dict[str, Any]:
    path = RECORDINGS / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: run `make recordings` (scripts/record_barman.py)")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def result(name: str) -> CommandResult:
    r = load(name)
    return CommandResult(
        argv=tuple(r["argv"]),
        returncode=r["returncode"],
        stdout=r["stdout"],
        stderr=r["stderr"],
        elapsed=0.0,
    )


def names() -> list[str]:
    """Names of the Barman recordings (other tools keep other files in the same directory)."""
    return sorted(p.stem for pattern in ("primary-*.json", "passive-*.json")
                  for p in RECORDINGS.glob(pattern))


class ReplayTransport(Transport):
    """Answers each argv with the recording made for exactly that argv on one node."""

    def __init__(self, *recordings: str, name: str = "replay") -> None:
        self.name = name
        self.by_argv = {tuple(load(r)["argv"]): r for r in recordings}
        self.calls: list[tuple[str, ...]] = []

    async def run(
        self, argv: Sequence[str], timeout: float, stdin: str | None = None
    ) -> CommandResult:
        key = tuple(argv)
        self.calls.append(key)
        if key not in self.by_argv:
            raise AssertionError(f"no recording for argv {list(key)}; have {sorted(self.by_argv)}")
        return result(self.by_argv[key])

    def stream(self, argv: Sequence[str], timeout: float | None = None) -> LineStream:
        raise NotImplementedError

    async def close(self) -> None:
        return None
