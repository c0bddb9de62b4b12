"""Checks for values that end up in a barman command line, local or over ssh.

Every check returns the value unchanged when it is safe and raises `UnsafeValue` otherwise. The
rules follow Barman's own (server names, backup ids and names, WAL names) but are narrower where
Barman is permissive, so that nothing surprising can reach a remote shell even before quoting.
"""

from __future__ import annotations

import re


class UnsafeValue(ValueError):
    """A value was refused before it could reach a command line. The message says which and why."""


_SERVER_RE = re.compile(r"[A-Za-z0-9_.-]+")
_BACKUP_ID_RE = re.compile(r"\d{8}T\d{6}")
_BACKUP_NAME_RE = re.compile(r"[A-Za-z0-9_.:+ -]+")
_WAL_RE = re.compile(
    r"[0-9A-Fa-f]{24}(?:\.partial|\.[0-9A-Fa-f]{8}\.backup)?|[0-9A-Fa-f]{8}\.history"
)
BACKUP_SHORTCUTS = frozenset(
    {"latest", "last", "oldest", "first", "last-failed", "latest-full", "last-full"}
)
_MAX_NAME = 128
_MAX_PATH = 4096
_MAX_TEXT = 1024


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _require_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise UnsafeValue(f"{what} must be text, not {type(value).__name__}")
    if not value:
        raise UnsafeValue(f"{what} is empty")
    return value


def check_server_name(name: str) -> str:
    """A Barman server name: letters, digits, '_', '.', '-'; not 'all'; no leading '-'."""
    name = _require_str(name, "server name")
    if len(name) > _MAX_NAME:
        raise UnsafeValue(f"server name {_show(name)} is longer than {_MAX_NAME} characters")
    if not _SERVER_RE.fullmatch(name):
        raise UnsafeValue(
            f"server name {_show(name)} may only contain letters, digits, '_', '.' and '-'"
        )
    if name.startswith("-"):
        raise UnsafeValue(f"server name {_show(name)} must not start with '-'")
    if name == "all":
        raise UnsafeValue("'all' is Barman's word for every server, not a server name")
    return name


def check_backup_id(backup_id: str) -> str:
    """A backup id (YYYYMMDDTHHMMSS), one of Barman's shortcuts, or a safe backup name."""
    backup_id = _require_str(backup_id, "backup id")
    if _BACKUP_ID_RE.fullmatch(backup_id) or backup_id in BACKUP_SHORTCUTS:
        return backup_id
    return _check_backup_name(backup_id, "backup id")


def check_backup_name(name: str) -> str:
    """A name for a new backup (`barman backup --name`): not an id and not a shortcut."""
    name = _require_str(name, "backup name")
    if _BACKUP_ID_RE.fullmatch(name) or name in BACKUP_SHORTCUTS or name == "auto":
        raise UnsafeValue(f"backup name {_show(name)} is reserved by Barman (an id or shortcut)")
    return _check_backup_name(name, "backup name")


def _check_backup_name(name: str, what: str) -> str:
    if len(name) > _MAX_NAME:
        raise UnsafeValue(f"{what} {_show(name)} is longer than {_MAX_NAME} characters")
    if not _BACKUP_NAME_RE.fullmatch(name):
        raise UnsafeValue(
            f"{what} {_show(name)} is neither a backup id (YYYYMMDDTHHMMSS), a shortcut "
            "(latest, oldest, ...) nor a backup name of letters, digits, spaces and _.:+-"
        )
    if name.startswith("-"):
        raise UnsafeValue(f"{what} {_show(name)} must not start with '-'")
    if name != name.strip():
        raise UnsafeValue(f"{what} {_show(name)} must not start or end with a space")
    return name


def check_wal_name(name: str) -> str:
    """A WAL file name: 24 hex digits, optionally .partial or .XXXXXXXX.backup; or a .history."""
    name = _require_str(name, "WAL name")
    if not _WAL_RE.fullmatch(name):
        raise UnsafeValue(f"{_show(name)} is not a WAL file name (24 hexadecimal digits)")
    return name


def check_path(path: str) -> str:
    """An absolute path with no NUL or newline."""
    path = _require_str(path, "path")
    if len(path) > _MAX_PATH:
        raise UnsafeValue(f"path {_show(path)} is longer than {_MAX_PATH} characters")
    if "\x00" in path or "\n" in path or "\r" in path:
        raise UnsafeValue(f"path {_show(path)} contains a NUL or newline character")
    if not path.startswith("/"):
        raise UnsafeValue(f"path {_show(path)} is not absolute")
    return path


def check_text(value: str, what: str) -> str:
    """Free text for an option value (a command, a target): printable, no leading '-'."""
    value = _require_str(value, what)
    if len(value) > _MAX_TEXT:
        raise UnsafeValue(f"{what} {_show(value)} is longer than {_MAX_TEXT} characters")
    if not value.isprintable():
        raise UnsafeValue(f"{what} {_show(value)} contains control characters")
    if value.startswith("-"):
        raise UnsafeValue(f"{what} {_show(value)} must not start with '-'")
    return value


def check_positive_int(value: int, what: str, *, maximum: int = 1_000_000) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnsafeValue(f"{what} must be a whole number, not {_show(value)}")
    if not 1 <= value <= maximum:
        raise UnsafeValue(f"{what} must be between 1 and {maximum}, not {value}")
    return value


def check_executable(value: str) -> str:
    """The barman executable: a bare command name or an absolute path."""
    value = _require_str(value, "barman executable")
    if not re.fullmatch(r"[A-Za-z0-9_./+-]+", value) or value.startswith("-"):
        raise UnsafeValue(
            f"barman executable {_show(value)} must be a plain command name or an absolute path"
        )
    if "/" in value:
        check_path(value)
    return value
