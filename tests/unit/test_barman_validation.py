"""Values refused before they reach a barman command line, and values let through intact."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dr_console.core.validation import (
    UnsafeValue,
    check_backup_id,
    check_backup_name,
    check_executable,
    check_path,
    check_server_name,
    check_text,
    check_wal_name,
)


@pytest.mark.parametrize("name", ["pgserver", "pg-15.main", "A_1", "x"])
def test_server_names_barman_accepts_pass_unchanged(name: str) -> None:
    assert check_server_name(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("all", "every server"),
        ("-rf", "start with '-'"),
        ("pg server", "letters, digits"),
        ("pg;rm -rf /", "letters, digits"),
        ("$(id)", "letters, digits"),
        ("", "empty"),
        ("pg\nserver", "letters, digits"),
        ("x" * 200, "longer than"),
    ],
)
def test_bad_server_names_are_refused_with_the_reason(name: str, reason: str) -> None:
    with pytest.raises(UnsafeValue, match=reason):
        check_server_name(name)


def test_a_non_string_server_name_is_refused() -> None:
    with pytest.raises(UnsafeValue, match="must be text"):
        check_server_name(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "backup_id",
    ["20261130T171940", "latest", "last", "oldest", "first", "last-failed", "latest-full",
     "before upgrade", "nightly_2026-11-30", "v1.2+hotfix:3"],
)
def test_backup_ids_shortcuts_and_names_pass(backup_id: str) -> None:
    assert check_backup_id(backup_id) == backup_id


@pytest.mark.parametrize(
    "backup_id",
    ["-latest", "x;y", "a'b", "a\"b", "$(id)", "a`b`", "tab\there", " padded", "new\nline", ""],
)
def test_unsafe_backup_ids_are_refused(backup_id: str) -> None:
    with pytest.raises(UnsafeValue):
        check_backup_id(backup_id)


@pytest.mark.parametrize("name", ["latest", "20261130T171940", "auto", "last-failed"])
def test_a_new_backup_cannot_take_a_reserved_name(name: str) -> None:
    with pytest.raises(UnsafeValue, match="reserved"):
        check_backup_name(name)


@pytest.mark.parametrize(
    "wal",
    ["00000001000000000000000B", "00000001000000000000001A.00000028.backup",
     "00000001000000000000000C.partial", "00000002.history"],
)
def test_wal_names_pass(wal: str) -> None:
    assert check_wal_name(wal) == wal


@pytest.mark.parametrize(
    "wal", ["0000000100000000000000", "00000001000000000000000G", "../etc/passwd",
            "00000001000000000000000B.tar", "-00000001000000000000000"],
)
def test_bad_wal_names_are_refused(wal: str) -> None:
    with pytest.raises(UnsafeValue, match="not a WAL file name"):
        check_wal_name(wal)


def test_paths_must_be_absolute_and_single_line() -> None:
    assert check_path("/var/tmp/restore here") == "/var/tmp/restore here"
    for bad, reason in (("tmp/data", "not absolute"), ("-rf", "not absolute"),
                        ("/tmp/a\nb", "NUL or newline"), ("/tmp/\x00", "NUL or newline")):
        with pytest.raises(UnsafeValue, match=reason):
            check_path(bad)


def test_free_text_refuses_control_characters_and_options() -> None:
    assert check_text("ssh postgres@pgserver", "cmd") == "ssh postgres@pgserver"
    with pytest.raises(UnsafeValue, match="control characters"):
        check_text("ssh x\n rm", "cmd")
    with pytest.raises(UnsafeValue, match="start with '-'"):
        check_text("--help", "cmd")


def test_barman_executable_is_a_name_or_an_absolute_path() -> None:
    assert check_executable("barman") == "barman"
    assert check_executable("/opt/venv/bin/barman") == "/opt/venv/bin/barman"
    for bad in ("barman; id", "-barman", "bin/../barman x"):
        with pytest.raises(UnsafeValue):
            check_executable(bad)


@given(st.text(max_size=40))
def test_accepted_server_names_need_no_shell_quoting(text: str) -> None:
    try:
        name = check_server_name(text)
    except UnsafeValue:
        return
    assert shlex.quote(name) == name
    assert not name.startswith("-")


@given(st.text(max_size=40))
def test_accepted_backup_ids_are_one_plain_word_once_quoted(text: str) -> None:
    try:
        value = check_backup_id(text)
    except UnsafeValue:
        return
    assert shlex.split(shlex.quote(value)) == [value]
    assert value.isprintable() and "'" not in value and not value.startswith("-")
