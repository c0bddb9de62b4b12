"""Names the lab does not have are refused by Barman and reported as such, over real ssh."""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_helpers import drconsole, lab_config, write_config
from ground_truth import SERVER

from dr_console.core.barman_errors import UnknownBackup, UnknownServer
from dr_console.core.collector import Collector
from dr_console.lab.lab import Lab

pytestmark = pytest.mark.integration


async def test_unknown_backup_id_and_unknown_server_are_clear_refusals(lab: Lab) -> None:
    collector = Collector(lab_config(lab, command_timeout=60.0))
    try:
        with pytest.raises(UnknownBackup) as backup:
            await collector.show_backup("bserver", SERVER, "20000101T000000")
        assert "20000101T000000" in str(backup.value)
        with pytest.raises(UnknownServer) as server:
            await collector.show_backup("bserver", "nosuchserver", "latest")
        assert "nosuchserver" in str(server.value)
    finally:
        await collector.close()


def test_an_operation_on_an_unknown_server_says_so(lab: Lab, tmp_path: Path) -> None:
    path = write_config(lab_config(lab, journal_dir=str(tmp_path / "journal")), tmp_path / "c.toml")
    result = drconsole(path, "--run", "switch-wal", "--server", "nosuchserver", "--node", "bserver")
    # the job starts and Barman refuses: its reason is the one line the user gets
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "drconsole: switch-wal failed on bserver: Unknown server 'nosuchserver'"
    )
