"""The walkthrough's pure helpers: what the operator types into the options step, and how the
pre-flight report reads as a checklist (refusals block the next step)."""

from __future__ import annotations

import pytest

from dr_console.core.preflight import PreflightReport, evaluate
from dr_console.core.recovery import RecoveryPlanError, RestoreHost, parse_target
from dr_console.tui.screens.recovery_state import (
    parse_jobs,
    parse_restore_host,
    preflight_rows,
    restore_host_text,
    target_text,
)


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ("10.0.0.5", RestoreHost("10.0.0.5")),
        ("barman@bserver", RestoreHost("bserver", user="barman")),
        (" barman@bserver:2222 ", RestoreHost("bserver", user="barman", port=2222)),
    ],
)
def test_restore_host_round_trips(text: str, host: RestoreHost) -> None:
    assert parse_restore_host(text) == host
    assert parse_restore_host(restore_host_text(host)) == host


@pytest.mark.parametrize("text", ["", "b server", "a@b@c", "host:99999", "h;rm -rf /", "$(x)"])
def test_restore_host_refuses_what_is_not_user_host_port(text: str) -> None:
    with pytest.raises(RecoveryPlanError):
        parse_restore_host(text)


def test_parallel_jobs() -> None:
    assert parse_jobs(" ") is None and parse_jobs("4") == 4
    for bad in ("0", "65", "-1", "two", "\u0661"):
        with pytest.raises(RecoveryPlanError, match="1 to 64"):
            parse_jobs(bad)


def test_target_time_is_also_shown_in_utc() -> None:
    text = target_text(parse_target("time=2026-11-30 19:00:00+01"))
    assert text == "time=2026-11-30 19:00:00+01:00 (2026-11-30 18:00:00 UTC)"
    assert target_text(parse_target("latest")) == "latest"


def _report(facts: dict[str, list[str]], port: int | None = None) -> PreflightReport:
    base = {"parent": ["/srv"], "writable": ["1"], "avail_kb": ["1048576"]}
    facts = base | facts
    return evaluate(facts, where="bserver", destination="/srv/r", need_bytes=2**20, port=port)


def test_preflight_checklist_ok_and_refused() -> None:
    rows = preflight_rows(_report({}))
    assert [r[0] for r in rows] == ["OK", "OK", "OK", "OK", "n/a"]
    assert rows[3][2] == "1.0 GiB free, needs 1.0 MiB"

    refused = preflight_rows(
        _report(
            {
                "exists": ["dir"],
                "entries": ["1"],
                "sample": ["x"],
                "pidfile": ["1"],
                "running": ["1"],
                "avail_kb": ["1"],
            }
        )
    )
    by_title = {title: (status, detail) for status, title, detail in refused}
    assert by_title["destination absent or empty (never overwritten)"][0] == "REFUSED"
    assert "is not empty" in by_title["destination absent or empty (never overwritten)"][1]
    assert by_title["no postmaster.pid, no running server"][0] == "REFUSED"
    assert by_title["free space ≥ backup + WAL"][0] == "REFUSED"

    busy = preflight_rows(_report({"port_checked": ["1"], "port_busy": ["tcp"]}, port=5499))
    assert busy[-1][:2] == ("REFUSED", "port free")
