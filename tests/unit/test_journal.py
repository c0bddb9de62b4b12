"""The audit journal: private, append-only, one whole line per event, readable after a crash."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dr_console.core.journal import (
    Journal,
    JournalError,
    JournalEvent,
    read_journal,
    read_journal_report,
)

ARGV = ("barman", "backup", "pgserver")


def _start(journal: Journal, job_id: str = "20261130T171932Z-abc123", **kw: object) -> None:
    journal.record(
        JournalEvent.STARTED,
        job_id=job_id,
        node="bserver",
        server="pgserver",
        operation="backup",
        argv=ARGV,
        log_path=f"/home/bmuser/.drconsole/jobs/{job_id}/output.log",
        **kw,  # type: ignore[arg-type]
    )


def test_journal_and_its_directory_are_private(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "state" / "drconsole")
    _start(journal)
    assert stat.S_IMODE(journal.dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600


def test_loosened_permissions_are_tightened_on_next_write(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    _start(journal)
    journal.path.chmod(0o644)
    _start(journal, job_id="20261130T171933Z-abc124")
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600


def test_events_are_appended_never_rewritten(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    _start(journal)
    before = journal.path.read_bytes()
    journal.record(
        JournalEvent.FINISHED,
        job_id="20261130T171932Z-abc123",
        node="bserver",
        server="pgserver",
        operation="backup",
        argv=ARGV,
        exit_status=0,
    )
    after = journal.path.read_bytes()
    assert after.startswith(before)
    lines = after.decode().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["started", "finished"]
    first = json.loads(lines[0])
    assert set(first) == {
        "event", "job_id", "node", "server", "operation", "argv", "user", "ssh_client", "at",
        "exit_status", "log_path",
    }  # fmt: skip
    assert first["argv"] == list(ARGV)
    assert first["at"].endswith("Z")


def test_who_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSH_CLIENT", "127.0.0.9 50000 22")
    journal = Journal(tmp_path)
    _start(journal)
    entry = json.loads(journal.path.read_text())
    assert entry["ssh_client"] == "127.0.0.9 50000 22"
    assert entry["user"]


def test_events_fold_into_one_record_per_job(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    _start(journal, job_id="20261130T171932Z-aaaaaa")
    _start(journal, job_id="20261130T171940Z-bbbbbb")
    common = {"node": "bserver", "server": "pgserver", "operation": "backup", "argv": ARGV}
    journal.record(JournalEvent.FINISHED, job_id="20261130T171932Z-aaaaaa", exit_status=0, **common)  # type: ignore[arg-type]
    journal.record(
        JournalEvent.CANCELLED, job_id="20261130T171940Z-bbbbbb", exit_status=1, **common
    )  # type: ignore[arg-type]
    journal.record(JournalEvent.ATTACHED, job_id="20261130T180000Z-cccccc", **common)  # type: ignore[arg-type]
    records = {r.job_id: r for r in read_journal(journal.path)}
    assert records["20261130T171932Z-aaaaaa"].state == "finished"
    assert records["20261130T171932Z-aaaaaa"].ended_at is not None
    assert records["20261130T171940Z-bbbbbb"].state == "cancelled"
    assert records["20261130T171940Z-bbbbbb"].exit_status == 1
    attached = records["20261130T180000Z-cccccc"]
    assert attached.state == "running" and len(attached.attached_at) == 1
    assert attached.started_at is None  # started by someone else: the journal does not guess
    assert all(r.argv == ARGV for r in records.values())


def test_partial_trailing_line_is_skipped_and_reported(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    _start(journal)
    with journal.path.open("ab") as f:
        f.write(b'{"event":"finished","job_id":"20261130T1')  # a crash mid-write
    problems: list[str] = []
    records = read_journal(journal.path, on_problem=problems.append)
    assert len(records) == 1 and records[0].state == "running"
    assert len(problems) == 1 and "partial last line" in problems[0]
    # The next event is not glued onto the partial line; it reads back whole.
    journal.record(
        JournalEvent.FINISHED,
        job_id="20261130T171932Z-abc123",
        node="bserver",
        server="pgserver",
        operation="backup",
        argv=ARGV,
        exit_status=0,
    )
    report = read_journal_report(journal.path)
    assert report.records[0].state == "finished"
    assert len(report.problems) == 1 and "corrupt line" in report.problems[0]


def test_secrets_are_never_written(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    with pytest.raises(JournalError, match="secret"):
        journal.record(
            JournalEvent.STARTED,
            job_id="20261130T171932Z-abc123",
            node="bserver",
            server="pgserver",
            operation="recover",
            argv=("barman", "recover", "--remote-ssh-command", "x password=hunter2"),
        )
    assert not journal.path.exists() or "hunter2" not in journal.path.read_text()


def test_unwritable_journal_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    journal = Journal(tmp_path / "file" / "sub")
    with pytest.raises(JournalError, match="could not open the journal"):
        _start(journal)


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tiny tmpfs to fill the disk needs root")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mnt)],
        capture_output=True,
        timeout=10,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True, timeout=10, check=False)


def test_full_disk_raises_and_leaves_no_truncated_line(tiny_fs: Path) -> None:
    journal = Journal(tiny_fs)
    written = 0
    with pytest.raises(JournalError, match="No space left on device"):
        for i in range(10_000):
            # Long argv so that lines straddle page boundaries and writes come up short.
            journal.record(
                JournalEvent.STARTED,
                job_id=f"20261130T171932Z-{i:06x}",
                node="bserver",
                server="pgserver",
                operation="backup",
                argv=("barman", "backup", "pgserver", "x" * (700 + i % 300)),
            )
            written += 1
    assert written > 10
    raw = journal.path.read_bytes()
    assert raw.endswith(b"\n")
    report = read_journal_report(journal.path)
    assert report.problems == []
    assert len(report.records) == written


# --- the journal cannot be turned against its user ------------------------------------------


def test_a_planted_symlink_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    target = tmp_path / "system-file"
    target.write_text("precious\n")
    target.chmod(0o644)
    journal_dir = tmp_path / "j"
    journal_dir.mkdir(mode=0o700)
    (journal_dir / "journal.jsonl").symlink_to(target)
    journal = Journal(journal_dir)
    with pytest.raises(JournalError, match="symbolic link"):
        _start(journal)
    with pytest.raises(JournalError, match="symbolic link"):
        journal.read()
    assert target.read_text() == "precious\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o775])
def test_a_journal_directory_others_can_write_to_is_refused(tmp_path: Path, mode: int) -> None:
    journal_dir = tmp_path / "shared"
    journal_dir.mkdir()
    journal_dir.chmod(mode)
    with pytest.raises(JournalError, match="others may write to it"):
        _start(Journal(journal_dir))
    assert not (journal_dir / "journal.jsonl").exists()


def test_a_journal_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a directory to another user needs root")
    journal_dir = tmp_path / "theirs"
    journal_dir.mkdir(mode=0o700)
    os.chown(journal_dir, 65534, 65534)
    with pytest.raises(JournalError, match="owned by uid 65534, not by you"):
        _start(Journal(journal_dir))


def test_a_new_journal_directory_is_private(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "new" / "journal")
    _start(journal)
    assert stat.S_IMODE(journal.dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600
