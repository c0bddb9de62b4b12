"""The file-facts script runs for real (sh, find, tail) over a Barman-shaped directory tree."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dr_console.core.barman_versions import Capabilities
from dr_console.core.node_facts import ServerLayout, parse_output, parse_xlogdb_line, script_argv
from dr_console.core.validation import UnsafeValue


def _layout(home: Path, server: str, passive: bool) -> ServerLayout:
    base = home / server
    return ServerLayout.from_show_servers(
        server,
        {
            "backup_directory": str(base),
            "wals_directory": str(base / "wals"),
            "incoming_wals_directory": str(base / "incoming"),
            "streaming_wals_directory": str(base / "streaming"),
            "errors_directory": str(base / "errors"),
            "xlogdb_directory": str(base / "wals"),
            "passive_node": passive,
            "streaming_archiver": True,
            "archiver": True,
            "slot_name": "barman",
            "xlog_segment_size": 16777216,
        },
        Capabilities.from_version_text("3.19.1"),
    )


def _make_tree(home: Path, server: str) -> None:
    base = home / server
    for sub in ("wals", "incoming", "streaming", "errors", "meta", "base"):
        (base / sub).mkdir(parents=True)
    (base / "wals" / f"{server}-xlog.db").write_text(
        "000000010000000000000005\t16777216\t1796059175.0982933\tNone\tNone\n"
        "00000001000000000000000B\t16777216\t1796059191.5\tNone\tNone\n"
    )
    (base / "incoming" / "00000001000000000000000C").write_bytes(b"")
    (base / "streaming" / "00000001000000000000000C").write_bytes(b"")
    (base / "streaming" / "00000001000000000000000D").write_bytes(b"")
    os.utime(base / "incoming" / "00000001000000000000000C", (1796059195, 1796059195))
    os.utime(base / "streaming" / "00000001000000000000000C", (1796059193, 1796059193))
    os.utime(base / "streaming" / "00000001000000000000000D", (1796059197, 1796059197))
    partial = base / "streaming" / "00000001000000000000000E.partial"
    partial.write_bytes(b"")
    os.utime(partial, (1796059200, 1796059200))
    (base / "meta" / "20261130T171940-backup.info").write_text("status=DONE\n")
    (base / "wals" / "sync-wals.info").write_text(
        "00000001000000000000001A.00000028.backup\t1937\n"
    )
    (base / "primary.info").write_text("{}")
    os.utime(base / "primary.info", (1796059300, 1796059300))


def _run(layouts: list[ServerLayout]) -> str:
    result = subprocess.run(
        script_argv(layouts), capture_output=True, text=True, timeout=30, check=True
    )
    return result.stdout


def test_reads_wal_queue_partial_and_passive_markers(tmp_path: Path) -> None:
    _make_tree(tmp_path, "pgserver")
    _make_tree(tmp_path, "other")
    facts = parse_output(
        _run([_layout(tmp_path, "pgserver", False), _layout(tmp_path, "other", True)])
    )
    assert facts.node_time is not None
    pg = facts.servers["pgserver"]
    assert pg.last_wal is not None and pg.last_wal.name == "00000001000000000000000B"
    assert pg.last_wal.time == datetime.fromtimestamp(1796059191.5, tz=UTC)
    assert (pg.incoming_count, pg.streaming_count, pg.errors_count) == (1, 2, 0)
    # the newest complete WAL waiting: on the node already (the .partial is not complete)
    assert pg.incoming_newest == datetime.fromtimestamp(1796059195, tz=UTC)
    assert pg.streaming_newest == datetime.fromtimestamp(1796059197, tz=UTC)
    assert pg.partial_name == "00000001000000000000000E.partial"
    assert pg.partial_mtime == datetime.fromtimestamp(1796059200, tz=UTC)
    assert pg.sync_wals_last is None  # not a passive server: not read
    other = facts.servers["other"]
    assert other.sync_wals_last == "00000001000000000000001A.00000028.backup"
    assert other.sync_wals_position is not None and other.sync_wals_position > 0
    assert other.primary_info_mtime == datetime.fromtimestamp(1796059300, tz=UTC)


def test_catalogue_signature_changes_when_a_backup_appears(tmp_path: Path) -> None:
    _make_tree(tmp_path, "pgserver")
    layout = _layout(tmp_path, "pgserver", False)
    before = parse_output(_run([layout])).servers["pgserver"].meta_signature
    (tmp_path / "pgserver" / "meta" / "20261201T000000-backup.info").write_text("status=EMPTY\n")
    after = parse_output(_run([layout])).servers["pgserver"].meta_signature
    assert before and after and before != after


def test_catalogue_signature_ignores_the_server_directory_changing(tmp_path: Path) -> None:
    """A passive node's cron rewrites primary.info in the server's directory every run: that
    is no new backup, and must not make the console re-read the catalogue each time."""
    _make_tree(tmp_path, "other")
    layout = _layout(tmp_path, "other", True)
    before = parse_output(_run([layout])).servers["other"].meta_signature
    server_dir = tmp_path / "other"
    (server_dir / "primary.info").write_text("{}\n")
    os.utime(server_dir, (1796059999, 1796059999))
    assert parse_output(_run([layout])).servers["other"].meta_signature == before


def test_missing_directories_are_reported_as_unknown_not_zero(tmp_path: Path) -> None:
    layout = _layout(tmp_path, "ghost", False)
    facts = parse_output(_run([layout])).servers["ghost"]
    assert facts.last_wal is None
    assert facts.incoming_count is None and facts.streaming_count is None


def test_hostile_paths_never_reach_the_shell(tmp_path: Path) -> None:
    layout = _layout(tmp_path, "pgserver", False)
    from dataclasses import replace

    with pytest.raises(UnsafeValue):
        script_argv([replace(layout, incoming_directory="relative/$(touch pwned)")])
    with pytest.raises(UnsafeValue):
        script_argv([replace(layout, server="x;rm -rf /")])


def test_xlogdb_line_parsing_is_total() -> None:
    assert parse_xlogdb_line("") is None
    entry = parse_xlogdb_line("00000002.history\tbad\tnot-a-time")
    assert entry is not None and entry.size is None and entry.time is None


def test_running_tasks_are_read_from_held_locks_like_list_processes(tmp_path: Path) -> None:
    import fcntl

    _make_tree(tmp_path, "pgserver")
    layout = _layout(tmp_path, "pgserver", False)
    held = tmp_path / ".pgserver-receive-wal.lock"
    stale = tmp_path / ".pgserver-backup.lock"  # left behind by a finished backup
    sync = tmp_path / ".pgserver-20261130T171940-sync-backup.lock"
    backup_id_lock = tmp_path / ".pgserver-20261130T171940.lock"  # not a task
    for path in (held, stale, sync, backup_id_lock):
        path.write_text("4242\n")
    fds = []
    try:
        for path in (held, sync, backup_id_lock):
            fd = os.open(path, os.O_RDWR)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fds.append(fd)
        facts = parse_output(_run([layout])).servers["pgserver"]
    finally:
        for fd in fds:
            os.close(fd)
    tasks = sorted((p.name, p.pid) for p in facts.processes)
    assert tasks == [("receive-wal", os.getpid()), ("sync-backup", os.getpid())]
    # once released, nothing is reported running
    assert parse_output(_run([layout])).servers["pgserver"].processes == ()


def test_last_segment_skips_backup_history_lines_but_keeps_their_time(tmp_path: Path) -> None:
    _make_tree(tmp_path, "pgserver")
    with (tmp_path / "pgserver" / "wals" / "pgserver-xlog.db").open("a") as xlogdb:
        xlogdb.write("00000001000000000000000B.00000028.backup\t338\t1796059199.0\tNone\tNone\n")
    facts = parse_output(_run([_layout(tmp_path, "pgserver", False)])).servers["pgserver"]
    assert facts.last_wal is not None
    assert facts.last_wal.name == "00000001000000000000000B"
    assert facts.last_wal.time == datetime.fromtimestamp(1796059199.0, tz=UTC)
