"""The core and headless mode must work without Textual (STYLE §1): start fast, no terminal."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "dr_console.core.collector",
    "dr_console.core.checks",
    "dr_console.core.barman",
    "dr_console.core.postgres",
    "dr_console.core.transport",
    "dr_console.core.jobs",
    "dr_console.core.snapshot_io",
    "dr_console.headless",
    "dr_console.cli",
]


def test_core_and_headless_never_import_textual() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"textual imported by the core: {result.stdout}"
