"""WAL segment names and LSNs: the arithmetic behind lag figures."""

from __future__ import annotations

import re

DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024
_WAL_RE = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(?:\.partial)?$")
_LSN_RE = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")


def is_wal_segment(name: str) -> bool:
    return _WAL_RE.match(name) is not None


def parse_wal_name(name: str) -> tuple[int, int] | None:
    """Return (timeline, absolute segment number) of a 16 MiB-based name, or None.

    The name's two low fields are the "log" and the segment within it; their meaning depends on
    the segment size: a log holds 4 GiB / segment_size segments.
    """
    match = _WAL_RE.match(name)
    if match is None:
        return None
    tli, log, seg = (int(g, 16) for g in match.groups())
    return tli, (log << 32) | seg


def segment_number(name: str, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int | None:
    parsed = parse_wal_name(name)
    if parsed is None:
        return None
    _, combined = parsed
    log, seg = combined >> 32, combined & 0xFFFFFFFF
    return log * (0x100000000 // segment_size) + seg


def segments_between(
    older: str, newer: str, segment_size: int = DEFAULT_SEGMENT_SIZE
) -> int | None:
    """How many segments `newer` is ahead of `older` (timelines ignored; never negative)."""
    a = segment_number(older, segment_size)
    b = segment_number(newer, segment_size)
    if a is None or b is None:
        return None
    return max(0, b - a)


def parse_lsn(lsn: str) -> int | None:
    match = _LSN_RE.match(lsn.strip())
    if match is None:
        return None
    high, low = (int(g, 16) for g in match.groups())
    return (high << 32) | low


def format_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"
