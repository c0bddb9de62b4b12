"""Operation argv: exact commands, refused inputs, and acceptance by Barman 3.19.1's own parser."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import pytest
from barman.cli import p as barman_parser  # the installed Barman's real argparse parser

from dr_console.core.barman import BarmanClient, RecoverSpec
from dr_console.core.transport_base import CommandResult, LineStream, Transport
from dr_console.core.validation import UnsafeValue


class NoTransport(Transport):
    """Argv builders never run anything; any call is a test failure."""

    name = "none"

    async def run(
        self, argv: Sequence[str], timeout: float, stdin: str | None = None
    ) -> CommandResult:
        raise AssertionError(f"unexpected run of {argv}")

    def stream(self, argv: Sequence[str], timeout: float | None = None) -> LineStream:
        raise AssertionError(f"unexpected stream of {argv}")

    async def close(self) -> None:
        return None


@pytest.fixture
def client() -> BarmanClient:
    return BarmanClient(NoTransport(), config_file="/home/bmuser/.barman.conf")


def barman_parses(argv: list[str]) -> argparse.Namespace:
    """Parse with Barman's own CLI parser: a wrong flag exits 2 there, and fails here."""
    assert argv[0] == "barman"
    try:
        return barman_parser.parse_args(argv[1:])
    except SystemExit as exc:  # argparse's way of refusing
        raise AssertionError(f"barman 3.19.1 refuses {argv}") from exc


def test_argv_puts_config_and_format_before_the_command(client: BarmanClient) -> None:
    assert client.argv("status", "all") == [
        "barman", "-c", "/home/bmuser/.barman.conf", "-f", "json", "status", "all"]
    assert client.argv("diagnose", json=False) == [
        "barman", "-c", "/home/bmuser/.barman.conf", "diagnose"]
    assert BarmanClient(NoTransport()).argv("list-servers") == [
        "barman", "-f", "json", "list-servers"]


def test_blog_routine_commands(client: BarmanClient) -> None:
    assert client.backup_argv("pgserver")[-2:] == ["backup", "pgserver"]
    assert client.switch_wal_argv("pgserver")[-4:] == [
        "switch-wal", "--force", "--archive", "pgserver"]
    assert client.cron_argv()[-1] == "cron"
    spec = RecoverSpec("pgserver", "latest", "/tmp/data", get_wal=True)
    assert client.recover_argv(spec)[-5:] == [
        "recover", "--get-wal", "pgserver", "latest", "/tmp/data"]


def test_backup_options_reach_barman(client: BarmanClient) -> None:
    argv = client.backup_argv(
        "pgserver", wait=True, immediate_checkpoint=False, name="before upgrade", jobs=2)
    ns = barman_parses(argv)
    assert (ns.command, ns.server_name, ns.wait, ns.immediate_checkpoint) == (
        "backup", ["pgserver"], True, False)
    assert (ns.backup_name, ns.jobs) == ("before upgrade", 2)
    assert barman_parses(client.backup_argv("pgserver", immediate_checkpoint=True)
                         ).immediate_checkpoint is True


def test_switch_wal_keep_delete_and_cron_parse(client: BarmanClient) -> None:
    ns = barman_parses(client.switch_wal_argv("pgserver", archive_timeout=30))
    assert (ns.force, ns.archive, ns.archive_timeout) == (True, True, 30)
    ns = barman_parses(client.switch_wal_argv("pgserver", force=False, archive=False))
    assert (ns.force, ns.archive) == (False, False)
    ns = barman_parses(client.keep_argv("pgserver", "20261130T171940", target="standalone"))
    assert (ns.command, ns.backup_id, ns.target) == ("keep", "20261130T171940", "standalone")
    assert barman_parses(client.keep_argv("pgserver", "latest", release=True)).release is True
    ns = barman_parses(client.delete_argv("pgserver", "oldest"))
    assert (ns.command, ns.server_name, ns.backup_id) == ("delete", "pgserver", "oldest")
    assert barman_parses(client.cron_argv()).command == "cron"


def test_point_in_time_recovery_flags_are_barman_3_19s(client: BarmanClient) -> None:
    spec = RecoverSpec(
        server="pgserver",
        backup_id="20261130T171940",
        destination="/var/tmp/restore",
        target_kind="time",
        target_value="2026-11-30 17:19:51",
        target_tli="latest",
        target_action="promote",
        target_inclusive=False,
        get_wal=True,
        standby_mode=False,
        remote_ssh_command="ssh postgres@pgserver",
        restore_command="barman-wal-restore -P -U bmuser bserver pgserver %f %p",
        jobs=2,
    )
    argv = client.recover_argv(spec)
    ns = barman_parses(argv)
    expected: dict[str, Any] = {
        "server_name": "pgserver", "backup_id": "20261130T171940",
        "destination_directory": "/var/tmp/restore", "target_time": "2026-11-30 17:19:51",
        "target_tli": "latest", "target_action": "promote", "exclusive": True, "get_wal": True,
        "remote_ssh_command": "ssh postgres@pgserver", "jobs": 2,
        "restore_command": "barman-wal-restore -P -U bmuser bserver pgserver %f %p",
    }
    assert {k: getattr(ns, k) for k in expected} == expected
    # FINDINGS P11: the restore command is one argv item, with no quotes of ours around it
    assert "barman-wal-restore -P -U bmuser bserver pgserver %f %p" in argv


@pytest.mark.parametrize(
    ("kind", "value", "attr"),
    [("lsn", "0/7000028", "target_lsn"), ("xid", "1234", "target_xid"),
     ("name", "before_delete", "target_name"), ("immediate", None, "target_immediate")],
)
def test_every_target_kind_maps_to_its_flag(
    client: BarmanClient, kind: Any, value: str | None, attr: str
) -> None:
    spec = RecoverSpec("pgserver", "latest", "/tmp/data", target_kind=kind, target_value=value,
                       standby_mode=True, get_wal=False)
    ns = barman_parses(client.recover_argv(spec))
    assert getattr(ns, attr) == (value if value is not None else True)
    assert ns.standby_mode is True and ns.get_wal is False


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (RecoverSpec("pgserver", "latest", "relative/dir"), "not absolute"),
        (RecoverSpec("all", "latest", "/tmp/d"), "every server"),
        (RecoverSpec("pgserver", "latest;id", "/tmp/d"), "neither a backup id"),
        (RecoverSpec("pgserver", "latest", "/tmp/d", target_kind="lsn", target_value="zz"),
         "not an LSN"),
        (RecoverSpec("pgserver", "latest", "/tmp/d", target_kind="xid", target_value="1 2"),
         "not a transaction id"),
        (RecoverSpec("pgserver", "latest", "/tmp/d", target_kind="time",
                     target_value="now; rm -rf /"), "not a time"),
        (RecoverSpec("pgserver", "latest", "/tmp/d", target_kind="time"), "needs a value"),
        (RecoverSpec("pgserver", "latest", "/tmp/d", target_value="x"), "needs a target kind"),
        (RecoverSpec("pgserver", "latest", "/tmp/d", target_inclusive=False), "exclusive"),
        (RecoverSpec("pgserver", "latest", "/tmp/d", target_action="promote"),
         "needs a recovery target"),
        (RecoverSpec("pgserver", "latest", "/tmp/d", get_wal=True,
                     restore_command="'barman-wal-restore bserver pgserver %f %p'"),
         "must not be wrapped in quotes"),
        (RecoverSpec("pgserver", "latest", "/tmp/d", restore_command="barman-wal-restore x"),
         "needs get_wal=True"),
        (RecoverSpec("pgserver", "latest", "/tmp/d", remote_ssh_command="ssh x\nid"),
         "control characters"),
        (RecoverSpec("pgserver", "latest", "/tmp/d", jobs=0), "between 1 and"),
    ],
)
def test_bad_recovery_specs_are_refused_with_a_reason(
    client: BarmanClient, spec: RecoverSpec, reason: str
) -> None:
    with pytest.raises(UnsafeValue, match=reason):
        client.recover_argv(spec)


def test_bad_operation_inputs_are_refused(client: BarmanClient) -> None:
    with pytest.raises(UnsafeValue, match="start with '-'"):
        client.backup_argv("-all")
    with pytest.raises(UnsafeValue, match="reserved"):
        client.backup_argv("pgserver", name="latest")
    with pytest.raises(UnsafeValue, match="either a target or release"):
        client.keep_argv("pgserver", "latest", target="full", release=True)
    with pytest.raises(UnsafeValue, match="'full' or 'standalone'"):
        client.keep_argv("pgserver", "latest", target="forever")
    with pytest.raises(UnsafeValue, match="archive_timeout"):
        client.switch_wal_argv("pgserver", archive=False, archive_timeout=5)
    with pytest.raises(UnsafeValue):
        client.delete_argv("pgserver", "$(reboot)")


def test_client_refuses_a_bad_executable_or_config_path() -> None:
    with pytest.raises(UnsafeValue):
        BarmanClient(NoTransport(), barman="barman; id")
    with pytest.raises(UnsafeValue, match="not absolute"):
        BarmanClient(NoTransport(), config_file="barman.conf")
