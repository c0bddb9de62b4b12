from __future__ import annotations

from dr_console.core import fmt


def test_durations_read_at_a_glance() -> None:
    assert fmt.duration(None) == "-"
    assert fmt.duration(42) == "42s"
    assert fmt.duration(90) == "1m30s"
    assert fmt.duration(3600) == "1h"
    assert fmt.duration(93784) == "1d2h"
    assert fmt.duration(86400 + 5) == "1d"


def test_sizes_in_binary_units() -> None:
    assert fmt.size(None) == "-"
    assert fmt.size(512) == "512 B"
    assert fmt.size(39765387) == "37.9 MiB"
    assert fmt.size(-564768) == "-551.5 KiB"
