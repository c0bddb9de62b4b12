"""Shell-injection attempts are refused before ANY command runs, and the tests prove it.

A "spy" directory holds real programs named `sh`, `barman` and `ssh` that append their argv to
a marker file and then do their job (the real /bin/sh; barman exits 1). It comes first on the
PATH of `drconsole --run` (a local node, no ssh), and is the node's `barman`. Every test first
shows the spy does see a harmless call, so the "marker is absent" assertions can fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dr_console.config import Config, ConsoleConfig, NodeConfig
from dr_console.core.barman import BarmanClient, RecoverSpec
from dr_console.core.jobs import JobManager
from dr_console.core.journal import Journal
from dr_console.core.transport_local import LocalTransport
from dr_console.core.validation import UnsafeValue
from dr_console.models import Job, JobState, NodeRole

HOSTILE = [
    "pg;touch /tmp/drconsole-pwned",
    "$(touch /tmp/drconsole-pwned)",
    "`touch /tmp/drconsole-pwned`",
    "pg|touch /tmp/drconsole-pwned",
    "pg && touch /tmp/drconsole-pwned",
    "pg\ntouch /tmp/drconsole-pwned",
    "-c/tmp/evil.conf",
    "../../etc/passwd",
    "pg'\"",
]


@pytest.fixture
def spy(tmp_path: Path) -> Path:
    """The spy directory; its marker file is spy/'ran'."""
    spy_dir = tmp_path / "spy"
    spy_dir.mkdir()
    marker = spy_dir / "ran"
    bodies = {
        "sh": 'exec /bin/sh "$@"',
        "ssh": "exit 255",
        "barman": "echo 'fake barman: no configuration' >&2; exit 1",
    }
    for name, body in bodies.items():
        prog = spy_dir / name
        prog.write_text(f'#!/bin/sh\nprintf "%s\\n" "{name} $*" >> {marker}\n{body}\n')
        prog.chmod(0o755)
    return spy_dir


def _ran(spy: Path) -> str:
    marker = spy / "ran"
    return marker.read_text() if marker.exists() else ""


def _config_file(tmp_path: Path, spy: Path, node_name: str = "local", **node: str) -> Path:
    path = tmp_path / "drconsole.toml"
    extra = "".join(f'{key} = "{value}"\n' for key, value in node.items())
    path.write_text(
        f'[console]\njournal_dir = "{tmp_path / "journal"}"\ncommand_timeout = 10\n\n'
        f'[[nodes]]\nname = "{node_name}"\nrole = "primary"\nbarman = "{spy / "barman"}"\n'
        f'job_dir = "{tmp_path / "jobs"}"\n{extra}'
    )
    path.chmod(0o600)
    return path


def _drconsole(config: Path, spy: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DRCONSOLE_CONFIG"}
    env["PATH"] = f"{spy}:{env.get('PATH', '/usr/bin:/bin')}"
    result = subprocess.run(
        [sys.executable, "-m", "dr_console.cli", "-c", str(config), *args],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_the_spy_sees_a_harmless_run(tmp_path: Path, spy: Path) -> None:
    config = _config_file(tmp_path, spy)
    result = _drconsole(config, spy, "--run", "backup", "--server", "pgserver")
    assert result.returncode == 0, result.stderr  # the job started (the fake barman fails it)
    assert "sh -c" in _ran(spy)


# Each run of the real command line costs a second: every operation, a few of the values.
@pytest.mark.parametrize(
    ("operation", "server"),
    [
        (op, HOSTILE[i % len(HOSTILE)])
        for i, op in enumerate(["check", "status", "backup", "switch-wal"] * 3)
    ],
)
def test_hostile_server_names_run_nothing(
    tmp_path: Path, spy: Path, operation: str, server: str
) -> None:
    config = _config_file(tmp_path, spy)
    result = _drconsole(config, spy, "--run", operation, f"--server={server}")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "server name" in result.stderr and result.stdout == ""
    assert _ran(spy) == ""


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("barman", "barman;touch /tmp/drconsole-pwned", "barman"),
        ("barman", "$(id)", "barman"),
        ("ssh", "-oProxyCommand=touch /tmp/drconsole-pwned", "ssh"),
        ("ssh", "user@host;id", "ssh"),
        ("ssh", "`id`@host", "ssh"),
        ("job_dir", "relative/jobs", "job_dir"),
        ("barman_config", "etc/barman.conf", "barman_config"),
    ],
)
def test_hostile_node_settings_are_config_errors_and_run_nothing(
    tmp_path: Path, spy: Path, key: str, value: str, reason: str
) -> None:
    config = _config_file(tmp_path, spy)
    text = config.read_text()
    if key in ("barman", "job_dir"):
        text = "\n".join(line for line in text.splitlines() if not line.startswith(f"{key} ="))
    config.write_text(text + f'\n{key} = "{value}"\n')
    result = _drconsole(config, spy, "--run", "check")
    assert result.returncode == 3, result.stdout + result.stderr
    assert reason in result.stderr and str(config) in result.stderr
    assert _ran(spy) == ""


@pytest.mark.parametrize("name", ["bad;name", "$(id)", "a b"])
def test_hostile_node_names_are_config_errors(tmp_path: Path, spy: Path, name: str) -> None:
    config = _config_file(tmp_path, spy, node_name=name)
    result = _drconsole(config, spy, "--run", "check")
    assert result.returncode == 3 and "name" in result.stderr
    assert _ran(spy) == ""
    unknown = _drconsole(_config_file(tmp_path, spy), spy, "--run", "check", f"--node={name}")
    assert unknown.returncode == 3 and "unknown node" in unknown.stderr
    assert _ran(spy) == ""


# --- the core API: every value is checked before the transport is called -------------------


def _client(spy: Path) -> BarmanClient:
    return BarmanClient(LocalTransport("local"), barman=str(spy / "barman"), timeout=10)


async def test_the_spy_sees_a_harmless_core_call(spy: Path) -> None:
    with pytest.raises(Exception):  # noqa: B017 - the fake barman fails; it RAN, that is the point
        await _client(spy).show_backup("pgserver", "latest")
    assert "barman -f json show-backup pgserver latest" in _ran(spy)


@pytest.mark.parametrize("value", HOSTILE)
async def test_hostile_backup_ids_and_servers_run_nothing(spy: Path, value: str) -> None:
    client = _client(spy)
    with pytest.raises(UnsafeValue):
        await client.show_backup("pgserver", value)
    with pytest.raises(UnsafeValue):
        await client.show_backup(value, "latest")
    with pytest.raises(UnsafeValue):
        await client.list_backups([value])
    with pytest.raises(UnsafeValue):
        client.delete_argv("pgserver", value)
    with pytest.raises(UnsafeValue):
        client.keep_argv("pgserver", value, target="full")
    assert _ran(spy) == ""


@pytest.mark.parametrize(
    "spec",
    [
        RecoverSpec("pgserver", "latest", "relative/dest"),
        RecoverSpec("pgserver", "latest", "/tmp/x\n/y"),
        RecoverSpec("pgserver", "latest;id", "/tmp/dest"),
        RecoverSpec("pg server", "latest", "/tmp/dest"),
        RecoverSpec(
            "pgserver",
            "latest",
            "/tmp/dest",
            target_kind="time",
            target_value="2026-11-30 17:00:00'; touch /tmp/drconsole-pwned",
        ),
        RecoverSpec("pgserver", "latest", "/tmp/dest", target_kind="lsn", target_value="0/1$(id)"),
        RecoverSpec("pgserver", "latest", "/tmp/dest", target_kind="xid", target_value="1;id"),
        RecoverSpec(
            "pgserver", "latest", "/tmp/dest", target_kind="name", target_value="-c/tmp/evil"
        ),
        RecoverSpec(
            "pgserver", "latest", "/tmp/dest", target_kind="name", target_value="point\n;id"
        ),
        RecoverSpec("pgserver", "latest", "/tmp/dest", remote_ssh_command="ssh x\nid"),
        RecoverSpec(
            "pgserver",
            "latest",
            "/tmp/dest",
            get_wal=True,
            restore_command="'barman-wal-restore x'",
        ),
    ],
)
def test_hostile_recovery_values_are_refused(spy: Path, spec: RecoverSpec) -> None:
    with pytest.raises(UnsafeValue):
        _client(spy).recover_argv(spec)


def _manager(tmp_path: Path, spy: Path) -> JobManager:
    node = NodeConfig(
        name="local", role=NodeRole.PRIMARY, barman=str(spy / "barman"),
        job_dir=str(tmp_path / "jobs"),
    )  # fmt: skip
    config = Config(console=ConsoleConfig(command_timeout=10), nodes=(node,))
    return JobManager({"local": LocalTransport("local")}, Journal(tmp_path / "journal"), config)


def _job(job_id: str) -> Job:
    return Job(job_id=job_id, node="local", server="pgserver", operation="backup",
               argv=("barman", "backup", "pgserver"), job_path="/nowhere", pid=1,
               state=JobState.RUNNING)  # fmt: skip


@pytest.mark.parametrize(
    "job_id", ["../../etc", "*", "20261130T171932Z-abcdef;id", "$(id)", "", "-rf"]
)
async def test_hostile_job_ids_run_nothing(
    tmp_path: Path, spy: Path, job_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = _manager(tmp_path, spy)
    monkeypatch.setenv("PATH", f"{spy}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    assert await manager.list("local") == []  # the control: the listing ran through sh
    assert "sh -c" in _ran(spy)
    (spy / "ran").unlink()
    with pytest.raises(UnsafeValue, match="job id"):
        await manager.get("local", job_id)
    with pytest.raises(UnsafeValue, match="job id"):
        await manager.cancel(_job(job_id))
    with pytest.raises(UnsafeValue, match="job id"):
        async for _ in manager.tail(_job(job_id)):
            pass
    with pytest.raises(UnsafeValue):
        await manager.start("local", "pg;id", "backup", ["barman", "backup", "pg"])
    with pytest.raises(UnsafeValue):
        await manager.start("local", "pgserver", "backup;id", ["barman"])
    assert _ran(spy) == ""
    assert not (tmp_path / "journal" / "journal.jsonl").exists()
