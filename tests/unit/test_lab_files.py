"""What the lab writes: the console config loads with the project's own loader, and the
postgresql.conf block is replaced in place, never duplicated (FINDINGS P10: no include file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dr_console.config import parse_config
from dr_console.lab import console_config
from dr_console.lab.postgres_cluster import BEGIN, END, conf_block, with_block
from dr_console.lab.settings import LabSettings

SECOND = LabSettings(base_dir=Path("/var/tmp/lab2"), ssh_port=2232, pg_port=5443)
SECOND = SECOND.with_address_base("127.0.0.12").with_user_prefix("drlab2")


@pytest.mark.parametrize("settings", [LabSettings(), SECOND])
def test_lab_config_loads_with_the_console_loader(settings: LabSettings) -> None:
    config = parse_config(console_config.render(settings), settings.config_path)
    primary, passive = config.node("bserver"), config.node("geobserver")
    assert primary.ssh is not None and passive.ssh is not None
    assert (primary.ssh.user, primary.ssh.host, primary.ssh.port) == (
        settings.barman_user, settings.bserver_address, settings.ssh_port)
    assert passive.primary == "bserver"
    assert primary.ssh.key_file == settings.console_dir / "id_ed25519"
    server = config.server("pgserver")
    assert server is not None and server.conninfo is not None
    assert f"host={settings.pg_address} port={settings.pg_port}" in server.conninfo
    assert f"passfile={settings.console_dir / 'pgpass'}" in server.conninfo


def test_conf_block_is_replaced_in_place() -> None:
    original = "shared_buffers = 128MB\n#archive_command = ''\n"
    block = conf_block(LabSettings(), Path("/opt/venv/bin"))
    once = with_block(original, block)
    assert once.startswith(original)
    assert "archive_command = '/opt/venv/bin/barman-wal-archive -U drlab-bmuser bserver " \
           "pgserver %p'" in once
    assert with_block(once, block) == once
    moved = with_block(once + "work_mem = 8MB\n", conf_block(SECOND, Path("/v/bin")))
    assert moved.count(BEGIN) == 1 and moved.count(END) == 1
    assert "port = 5443" in moved and "port = 5433" not in moved
    assert moved.endswith("work_mem = 8MB\n")
    assert "include" not in block
