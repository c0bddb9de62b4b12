"""Recovery planning (pure): targets, validation against the window, backup choice, the plan."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dr_console.core.barman import BarmanClient
from dr_console.core.recovery import (
    Destination,
    RecoveryOptions,
    RecoveryPlanError,
    RestoreHost,
    build_plan,
    choose_backup,
    parse_destination,
    parse_target,
    validate_target,
)
from dr_console.core.recovery_source import archive_command_host
from dr_console.core.transport import LocalTransport
from dr_console.models import Backup, RecoveryWindow

T0 = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)


def backup(bid: str, minutes: int, status: str = "DONE", end_wal: str | None = None) -> Backup:
    return Backup(
        backup_id=bid, status=status, end_time=T0 + timedelta(minutes=minutes),
        size_bytes=40 << 20, wal_size_bytes=16 << 20, end_wal=end_wal, timeline=1,
    )  # fmt: skip


BACKUPS = (
    backup("20261130T172000", 20, end_wal="000000010000000000000010"),
    backup("20261130T171500", 15, status="FAILED"),
    backup("20261130T171000", 10, end_wal="000000010000000000000008"),
)
WINDOW = RecoveryWindow(
    begin=T0 + timedelta(minutes=10), end=T0 + timedelta(minutes=40),
    oldest_backup_id="20261130T171000", latest_backup_id="20261130T172000", rpo_seconds=5.0,
)  # fmt: skip


# --- parse_target -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("latest", "latest", None),
        ("immediate", "immediate", None),
        ("time=2026-11-30 17:20:00+00", "time", "2026-11-30 17:20:00+00:00"),
        ("time=2026-11-30T17:20:00Z", "time", "2026-11-30 17:20:00+00:00"),
        ("lsn=0/c000000", "lsn", "0/C000000"),
        ("xid=1234", "xid", "1234"),
        ("name=before_upgrade", "name", "before_upgrade"),
    ],
)
def test_parse_target_forms(text: str, kind: str, value: str | None) -> None:
    target = parse_target(text)
    assert (target.kind, target.value) == (kind, value)


def test_parse_target_timeline_suffix() -> None:
    assert parse_target("time=2026-11-30 17:20:00+01 tli=2").tli == 2
    assert parse_target("latest tli=latest").tli == "latest"
    assert parse_target("lsn=0/1000,tli=current").tli == "current"


def test_time_without_zone_is_refused_with_the_zone_to_add() -> None:
    with pytest.raises(RecoveryPlanError, match=r"no time zone.*\+00' for UTC"):
        parse_target("time=2026-11-30 17:20:00")


@pytest.mark.parametrize(
    "text",
    ["", "yesterday", "time=", "time=soon+00", "lsn=12345", "xid=-1", "xid=abc",
     "name=a b", "name=-rm", "name=x;rm", "tli=2", "immediate tli=2", "latest tli=zero",
     "lsn=0/1\n"],
)  # fmt: skip
def test_parse_target_refuses_with_a_message(text: str) -> None:
    with pytest.raises(RecoveryPlanError) as info:
        parse_target(text)
    assert str(info.value)


@given(
    st.datetimes(
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
        )
    )
)
def test_time_round_trips(when: datetime) -> None:
    target = parse_target(f"time={when.isoformat(sep=' ')}")
    assert target.time == when
    assert parse_target(f"time={target.value}").time == when


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_lsn_round_trips(high: int, low: int) -> None:
    target = parse_target(f"lsn={high:X}/{low:x}")
    assert target.lsn == (high << 32) | low
    assert target.value == f"{high:X}/{low:X}"


@given(st.text(max_size=60))
def test_parse_target_only_ever_raises_plan_errors(text: str) -> None:
    try:
        target = parse_target(text)
    except RecoveryPlanError:
        return
    # anything accepted is safe to hand to Barman as one argv item
    assert target.value is None or target.value.isprintable()
    assert target.value is None or not target.value.startswith("-")


# --- validate_target and choose_backup ---------------------------------------------------------


def test_time_before_the_oldest_backup_end_is_refused_with_the_window() -> None:
    problems = validate_target(parse_target("time=2026-11-30 17:05:00+00"), WINDOW, BACKUPS)
    assert len(problems) == 1
    assert "before the earliest consistent point" in problems[0]
    assert "2026-11-30 17:10:00+00:00 → 2026-11-30 17:40:00+00:00" in problems[0]


def test_time_after_the_last_wal_is_refused() -> None:
    problems = validate_target(parse_target("time=2026-11-30 18:00:00+00"), WINDOW, BACKUPS)
    assert len(problems) == 1 and "after the last WAL" in problems[0]


def test_time_inside_the_window_and_other_zones_are_compared_as_instants() -> None:
    # 18:25 at UTC+1 is 17:25 UTC: inside the window
    assert validate_target(parse_target("time=2026-11-30 18:25:00+01"), WINDOW, BACKUPS) == []


def test_lsn_outside_the_node_is_refused() -> None:
    early = parse_target("lsn=0/1000000")
    late = parse_target("lsn=0/30000000")
    assert "before the end of the oldest backup" in validate_target(early, WINDOW, BACKUPS)[0]
    problems = validate_target(late, WINDOW, BACKUPS, last_wal="000000010000000000000020")
    assert "after the last WAL" in problems[0]


def test_nothing_recoverable_without_a_done_backup() -> None:
    only_failed = (backup("20261130T171500", 15, status="FAILED"),)
    assert validate_target(parse_target("latest"), WINDOW, only_failed)
    with pytest.raises(RecoveryPlanError, match="no DONE backup"):
        choose_backup(parse_target("latest"), only_failed)


def test_choose_newest_done_backup_ending_before_the_target() -> None:
    chosen, why = choose_backup(parse_target("time=2026-11-30 17:18:00+00"), BACKUPS)
    assert chosen.backup_id == "20261130T171000"  # the 17:15 one FAILED, the 17:20 one is after
    assert "ends before the target" in why
    assert choose_backup(parse_target("latest"), BACKUPS)[0].backup_id == "20261130T172000"
    lsn_choice = choose_backup(parse_target("lsn=0/11000000"), BACKUPS)[0]
    assert lsn_choice.backup_id == "20261130T172000"


def test_operator_pick_is_validated() -> None:
    target = parse_target("time=2026-11-30 17:18:00+00")
    with pytest.raises(RecoveryPlanError, match="after the target"):
        choose_backup(target, BACKUPS, pick="20261130T172000")
    with pytest.raises(RecoveryPlanError, match="FAILED, not DONE"):
        choose_backup(target, BACKUPS, pick="20261130T171500")
    with pytest.raises(RecoveryPlanError, match="no backup 20991130T171500"):
        choose_backup(target, BACKUPS, pick="20991130T171500")
    assert choose_backup(target, BACKUPS, pick="20261130T171000")[0].backup_id == (
        "20261130T171000"
    )


# --- destination and plan ---------------------------------------------------------------------


def test_parse_destination() -> None:
    assert parse_destination("/var/tmp/restore/") == Destination("/var/tmp/restore")
    remote = parse_destination("postgres@pgserver:/var/lib/pg/restore")
    assert (remote.user, remote.host) == ("postgres", "pgserver")
    assert remote.path == "/var/lib/pg/restore"
    assert remote.display() == "postgres@pgserver:/var/lib/pg/restore"
    for bad in (
        "relative/path",
        "/",
        "/a/../etc",
        "host:relative",
        "-oProxy@h:/x",
        "/a b",
        "h;rm:/x",
    ):
        with pytest.raises(RecoveryPlanError):
            parse_destination(bad)


CLIENT = BarmanClient(LocalTransport(name="bserver"))


def plan_for(target: str, dest: str, **options: object) -> object:
    tgt = parse_target(target)
    chosen, why = choose_backup(tgt, BACKUPS)
    return build_plan(
        CLIENT, node="bserver", server="pgserver", backup=chosen, backup_why=why, target=tgt,
        destination=parse_destination(dest), options=RecoveryOptions(**options),  # type: ignore[arg-type]
    )  # fmt: skip


def test_pitr_plan_warns_that_postgresql_pauses_by_default() -> None:
    plan = plan_for("time=2026-11-30 17:25:00+00", "/srv/restore")
    assert plan.argv == (  # type: ignore[attr-defined]
        "barman", "recover", "--target-time", "2026-11-30 17:25:00+00:00", "--get-wal",
        "pgserver", "20261130T172000", "/srv/restore",
    )  # fmt: skip
    assert any("PAUSES at the target" in w for w in plan.warnings)  # type: ignore[attr-defined]
    assert shlex.split(plan.command_line) == list(plan.argv)  # type: ignore[attr-defined]


def test_remote_plan_names_the_barman_host_reachable_from_the_destination() -> None:
    plan = plan_for(
        "latest",
        "postgres@pgserver:/srv/restore",
        restore_host=RestoreHost(host="bserver", user="bmuser"),
    )
    argv = list(plan.argv)  # type: ignore[attr-defined]
    assert argv[argv.index("--remote-ssh-command") + 1] == "ssh postgres@pgserver"
    assert argv[argv.index("--restore-command") + 1] == (
        "barman-wal-restore -P -U bmuser bserver pgserver %f %p"
    )


def test_remote_plan_refuses_localhost_and_a_missing_barman_host() -> None:
    with pytest.raises(RecoveryPlanError, match="the destination itself, not the Barman node"):
        plan_for("latest", "postgres@pgserver:/srv/r", restore_host=RestoreHost("localhost"))
    with pytest.raises(RecoveryPlanError, match="needs the Barman host"):
        plan_for("latest", "postgres@pgserver:/srv/r")


def test_target_action_needs_a_target() -> None:
    with pytest.raises(RecoveryPlanError, match="needs a target"):
        plan_for("latest", "/srv/r", target_action="promote")
    plan = plan_for("immediate", "/srv/r", target_action="promote", jobs=2)
    assert "--target-immediate" in plan.argv  # type: ignore[attr-defined]
    assert plan.warnings == ()  # type: ignore[attr-defined]


def test_archive_command_gives_the_host_as_postgresql_reaches_it() -> None:
    found = archive_command_host("barman-wal-archive -U bmuser --port 2222 bserver pgserver %p")
    assert found == RestoreHost(host="bserver", user="bmuser", port=2222)
    assert archive_command_host("cp %p /archive/%f") is None


def test_backup_whose_end_wal_has_not_reached_the_node_is_refused() -> None:
    from dr_console.core.recovery import check_backup_wal

    done = backup("20261130T172000", 20, end_wal="000000010000000000000010")
    problem = check_backup_wal(done, last_wal="00000001000000000000000F")
    assert problem is not None and "has not reached this node yet" in problem
    assert check_backup_wal(done, last_wal="000000010000000000000010") is None
    assert check_backup_wal(done, last_wal=None) is None
