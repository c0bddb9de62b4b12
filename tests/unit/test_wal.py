from __future__ import annotations

from dr_console.core import wal


def test_segment_numbers_follow_the_16mib_layout() -> None:
    assert wal.segment_number("000000010000000000000005") == 5
    # log 1, segment 0 comes right after log 0, segment 0xFF with 16 MiB segments
    assert wal.segment_number("000000010000000100000000") == 256
    assert wal.segments_between("0000000100000000000000FF", "000000010000000100000001") == 2


def test_segment_numbers_with_other_segment_sizes() -> None:
    one_gib = 1024 * 1024 * 1024
    assert wal.segment_number("000000010000000100000002", one_gib) == 4 + 2


def test_lag_is_never_negative_and_ignores_timeline() -> None:
    assert wal.segments_between("00000002000000000000000A", "000000010000000000000008") == 0
    assert wal.segments_between("00000001000000000000000A", "00000002000000000000000C") == 2


def test_garbage_names_give_none() -> None:
    assert wal.segment_number("00000002.history") is None
    assert wal.segments_between("nonsense", "000000010000000000000008") is None


def test_lsn_round_trip() -> None:
    assert wal.parse_lsn("0/C089E20") == 0x0C089E20
    assert wal.parse_lsn("1/0") == 1 << 32
    assert wal.format_lsn(wal.parse_lsn("16/B374D848") or 0) == "16/B374D848"
    assert wal.parse_lsn("zz") is None
