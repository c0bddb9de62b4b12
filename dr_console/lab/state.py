"""<base>/lab.json: what this lab created, so `down` removes exactly that and nothing else."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dr_console.lab.errors import LabError
from dr_console.lab.settings import LabSettings


@dataclass
class LabState:
    settings: LabSettings
    created_users: list[str] = field(default_factory=list)
    created_run_sshd: bool = False  # /run/sshd, sshd's privilege separation directory
    venv: str | None = None  # where the lab's barman lives
    created_venv: bool = False

    def save(self) -> None:
        path = self.settings.state_file
        path.parent.mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {
            "settings": self.settings.to_json(),
            "created_users": self.created_users,
            "created_run_sshd": self.created_run_sshd,
            "venv": self.venv,
            "created_venv": self.created_venv,
        }
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, base_dir: Path) -> LabState | None:
        path = base_dir / "lab.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise LabError(f"{path}: unreadable lab state ({exc})") from exc
        try:
            return cls(
                settings=LabSettings.from_json(data["settings"]),
                created_users=list(data.get("created_users", [])),
                created_run_sshd=bool(data.get("created_run_sshd", False)),
                venv=data.get("venv"),
                created_venv=bool(data.get("created_venv", False)),
            )
        except (KeyError, TypeError) as exc:
            raise LabError(f"{path}: unexpected lab state ({exc})") from exc
