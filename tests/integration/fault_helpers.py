"""Shared by the fault and security tests: lab config variants, the real CLI, TUI waits."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from dr_console.config import Config, NodeConfig, dump_config, load_config
from dr_console.lab.lab import Lab


def lab_config(lab: Lab, **console: Any) -> Config:
    """The lab's console config with console settings replaced (fast polls for tests)."""
    config = load_config(lab.config_path)
    return dataclasses.replace(config, console=dataclasses.replace(config.console, **console))


def with_node(config: Config, name: str, **changes: Any) -> Config:
    nodes = tuple(dataclasses.replace(n, **changes) if n.name == name else n for n in config.nodes)
    return dataclasses.replace(config, nodes=nodes)


def node(config: Config, name: str) -> NodeConfig:
    return config.node(name)


def write_config(config: Config, path: Path) -> Path:
    path.write_text(dump_config(config))
    path.chmod(0o600)
    return path


def drconsole(
    config: Path, *args: str, timeout: float = 240, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "DRCONSOLE_CONFIG"}
    result = subprocess.run(
        [sys.executable, "-m", "dr_console.cli", "-c", str(config), *args],
        capture_output=True, text=True, timeout=timeout, check=False,
        env=base | (env or {}),
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    return result


def checks_of(result: subprocess.CompletedProcess[str]) -> dict[tuple[str, str | None, str], str]:
    doc = json.loads(result.stdout)
    return {(c["node"], c["server"], c["check"]): c["status"] for c in doc["checks"]}


def details_of(result: subprocess.CompletedProcess[str]) -> dict[tuple[str, str | None, str], str]:
    doc = json.loads(result.stdout)
    return {(c["node"], c["server"], c["check"]): c["detail"] for c in doc["checks"]}


def cell(table: DataTable[Text], row: str, column: str) -> str:
    value = table.get_cell(row, column)
    return value.plain if isinstance(value, Text) else str(value)


async def until(condition: Callable[[], object], timeout: float, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"not met within {timeout:.0f} s: {what}")
        await asyncio.sleep(0.1)
