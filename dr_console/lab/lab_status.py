"""What `drconsole lab status` reports: plain data, with the exit code and a JSON form."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXIT_UP = 0
EXIT_PARTIAL = 1
EXIT_ABSENT = 3


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    up: bool
    detail: str


@dataclass(frozen=True)
class LabStatus:
    base_dir: Path
    present: bool
    components: tuple[ComponentStatus, ...]

    @property
    def state(self) -> str:
        if not self.present:
            return "absent"
        return "up" if all(c.up for c in self.components) else "partial"

    @property
    def exit_code(self) -> int:
        return {"absent": EXIT_ABSENT, "up": EXIT_UP}.get(self.state, EXIT_PARTIAL)

    def component(self, name: str) -> ComponentStatus:
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "base_dir": str(self.base_dir),
            "state": self.state,
            "components": {c.name: {"up": c.up, "detail": c.detail} for c in self.components},
        }

    def render(self) -> str:
        lines = [f"lab at {self.base_dir}: {self.state}"]
        lines += [f"  {'up  ' if c.up else 'DOWN'}  {c.name:<20} {c.detail}"
                  for c in self.components]
        return "\n".join(lines)
