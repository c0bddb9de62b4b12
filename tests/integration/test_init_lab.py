"""`drconsole init` against the lab's two real nodes."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from dr_console.config import load_config
from dr_console.lab.lab import Lab
from dr_console.models import NodeRole

pytestmark = pytest.mark.integration


def _init(lab: Lab, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    s = lab.settings
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "dr_console.cli",
            "init",
            "--node",
            f"bserver={s.barman_user}@{s.bserver_address}:{s.ssh_port}",
            "--node",
            f"geobserver={s.geo_user}@{s.geo_address}:{s.ssh_port}",
            "--site",
            "bserver=Site-X",
            "--site",
            "geobserver=Site-Y",
            "--ssh-key",
            str(lab.console_key),
            "--known-hosts",
            str(lab.console_known_hosts),
            "-o",
            str(out),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_init_discovers_roles_and_writes_a_config_that_loads_back(lab: Lab, tmp_path: Path) -> None:
    out = tmp_path / "drconsole.toml"
    result = _init(lab, out)
    assert result.returncode == 0, result.stderr
    assert "geobserver (passive): pgserver" in result.stdout
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    config = load_config(out)
    nodes = {n.name: n for n in config.nodes}
    assert nodes["bserver"].role is NodeRole.PRIMARY
    assert nodes["geobserver"].role is NodeRole.PASSIVE
    assert nodes["geobserver"].primary == "bserver"
    assert nodes["bserver"].ssh is not None and nodes["bserver"].ssh.port == lab.settings.ssh_port
    server = config.server("pgserver")
    assert server is not None and server.conninfo is not None
    assert "password" not in server.conninfo
    assert f"host={lab.settings.pg_address}" in server.conninfo

    # what was written loads back identically, and a second run refuses to overwrite it
    again = _init(lab, tmp_path / "second.toml")
    assert again.returncode == 0
    second = load_config(tmp_path / "second.toml")
    assert dataclasses.replace(second, source=None) == dataclasses.replace(config, source=None)
    refused = _init(lab, out)
    assert refused.returncode == 2 and "exists; use --force" in refused.stderr
    assert _init(lab, out, "--force").returncode == 0


def test_init_reports_an_unreachable_node_without_writing(tmp_path: Path, lab: Lab) -> None:
    out = tmp_path / "x.toml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dr_console.cli",
            "init",
            "--node",
            f"bserver={lab.settings.barman_user}@{lab.settings.bserver_address}:1",
            "--known-hosts",
            str(lab.console_known_hosts),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "node bserver:" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
