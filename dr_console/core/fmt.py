"""Human formatting of ages and sizes, shared by the checks' details, headless text and the TUI."""

from __future__ import annotations

from datetime import datetime


def age_seconds(then: datetime | None, now: datetime) -> float | None:
    if then is None:
        return None
    return max(0.0, (now - then).total_seconds())


def duration(seconds: float | None) -> str:
    """90 -> '1m30s', 93784 -> '1d2h'; two units at most, the precision a DBA reads at a glance."""
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    parts: list[str] = []
    for suffix, size in units:
        if s >= size:
            parts.append(f"{s // size}{suffix}")
            s %= size
        elif parts:
            parts.append("")
        if len(parts) == 2:
            break
    return "".join(parts)


def size(num_bytes: float | None) -> str:
    if num_bytes is None:
        return "-"
    value = float(num_bytes)
    sign = "-" if value < 0 else ""
    value = abs(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{sign}{value:.0f} {unit}" if unit == "B" else f"{sign}{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
