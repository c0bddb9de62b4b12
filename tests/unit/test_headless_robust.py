"""`--run` never ends in a traceback: broken pipes, broken journals, unreadable job records.
drconsole runs for real (a subprocess) against a node that is this host (the local transport)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(
        "[console]\n"
        f'journal_dir = "{tmp_path / "journal"}"\n'
        "[[nodes]]\n"
        'name = "here"\n'
        f'job_dir = "{tmp_path / "jobs"}"\n'
    )
    path.chmod(0o600)
    return path


def _jobs(tmp_path: Path, count: int) -> None:
    for i in range(count):
        job = tmp_path / "jobs" / f"20261201T10{i // 60 % 60:02d}{i % 60:02d}Z-{i:06x}"
        job.mkdir(parents=True)
        (job / "argv").write_text("true\n")
        (job / "meta.json").write_text(json.dumps({
            "job_id": job.name, "node": "here", "server": "pgserver", "operation": "backup",
            "argv": ["barman", "backup", "pgserver"], "at": "2026-12-01T10:00:00Z"}))
        (job / "exit_status").write_text("0\n")


def _run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dr_console.cli", "-c", str(config), *args],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def test_a_reader_that_went_away_gets_no_traceback(tmp_path: Path) -> None:
    """`--run jobs | head -2`: the reader closes the pipe while drconsole still writes. Here the
    reader is gone before the first write, so the broken pipe is certain on any kernel."""
    config = _config(tmp_path)
    _jobs(tmp_path, 50)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dr_console.cli", "-c", str(config), "--run", "jobs",
             "--format", "json"],
            stdout=write_end, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 3
    for trace in ("Traceback", "BrokenPipe", "Exception ignored"):
        assert trace not in err, err


@pytest.mark.parametrize("breakage", ["journal is a directory", "journal line nested deep"])
def test_run_jobs_lists_the_jobs_whatever_the_journal(tmp_path: Path, breakage: str) -> None:
    config = _config(tmp_path)
    _jobs(tmp_path, 2)
    journal = tmp_path / "journal"
    journal.mkdir(mode=0o700)
    if breakage == "journal is a directory":
        (journal / "journal.jsonl").mkdir()
    else:
        (journal / "journal.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    result = _run(config, "--run", "jobs", "--format", "json")
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["jobs"]) == 2
    if breakage == "journal is a directory":
        assert "journal: " in result.stderr and "listed without recording them" in result.stderr


def test_run_jobs_has_no_nagios_format(tmp_path: Path) -> None:
    result = _run(_config(tmp_path), "--run", "jobs", "--format", "nagios")
    assert result.returncode == 3 and result.stdout == ""
    assert "--run jobs prints text or json" in result.stderr


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf"])
def test_a_timeout_must_be_seconds_above_zero(tmp_path: Path, value: str) -> None:
    result = _run(_config(tmp_path), "--run", "check", "--timeout", value)
    assert result.returncode == 2 and "must be a number of seconds above 0" in result.stderr
