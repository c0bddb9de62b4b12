"""Access to tests/recordings: real Barman output recorded from the lab by
scripts/record_barman.py (regenerate with `make recordings`). Never edit those files by hand."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from dr_console.core.barman_versions import TESTED_VERSIONS
from dr_console.core.transport_base import CommandResult, LineStream, Transport

RECORDINGS = Path(__file__).resolve().parents[1] / "recordings"
# The lab's default Barman: its recordings (the full set, with the provoked partial shapes) are
# tests/recordings/*.json; every other tested version's are in tests/recordings/barman-<v>/.
DEFAULT_VERSION = "3.19.1"
VERSIONS = TESTED_VERSIONS


def directory(version: str = DEFAULT_VERSION) -> Path:
    return RECORDINGS if version == DEFAULT_VERSION else RECORDINGS / f"barman-{version}"


@cache
def load(name: str, version: str = DEFAULT_VERSION) -> dict[str, Any]:
    path = directory(version) / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: run `make recordings` (scripts/record_versions.py)")
    data: dict[str, Any] = json.loads(path.read_text())
    if data.get("barman_version") != version:
        raise AssertionError(f"{path} was recorded with Barman {data.get('barman_version')}")
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


def names(version: str = DEFAULT_VERSION) -> list[str]:
    """Names of the Barman recordings (other tools keep other files in the same directory)."""
    return sorted(p.stem for pattern in ("primary-*.json", "passive-*.json")
                  for p in directory(version).glob(pattern))


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
