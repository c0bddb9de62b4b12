"""Line numbers for keys of a TOML document, so config errors can name the line.

tomllib reports lines only for syntax errors. This scanner walks text that tomllib has already
accepted and records, for every table header and every `key =`, the line it starts on, keyed by
its resolved path: ("nodes", 2, "ssh") is the `ssh` key of the second `[[nodes]]` table (indexes
are 1-based, as a user counts them in the file). Keys inside inline tables and arrays are not
indexed; `line_of` then falls back to the nearest enclosing key or header it knows.
"""

from __future__ import annotations

import json
import re

KeyPath = tuple[str | int, ...]

_BARE_KEY_END = frozenset(" \t.=]\n\r#")
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")


def format_path(path: KeyPath) -> str:
    """("nodes", 2, "ssh") -> "nodes[2].ssh"; a key that is not bare is quoted: "a b"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            shown = part if _BARE_KEY_RE.fullmatch(part) else json.dumps(part, ensure_ascii=False)
            out += f".{shown}" if out else shown
    return out


class LineIndex:
    def __init__(self, text: str) -> None:
        self._lines: dict[KeyPath, int] = {}
        self._scan(text)

    def line_of(self, path: KeyPath) -> int | None:
        """Line of `path`, else of its nearest known ancestor, else None."""
        for end in range(len(path), 0, -1):
            line = self._lines.get(path[:end])
            if line is not None:
                return line
        return None

    # --- scanner (assumes valid TOML; never raises on anything else) ---------------------------

    def _scan(self, text: str) -> None:
        n = len(text)
        i = 0
        line = 1
        table: KeyPath = ()
        last_index: dict[KeyPath, int] = {}  # array-of-tables path -> index of its last element
        while i < n:
            c = text[i]
            if c in " \t\r":
                i += 1
            elif c == "\n":
                line += 1
                i += 1
            elif c == "#":
                i = _skip_to_eol(text, i)
            elif c == "[":
                is_array = text.startswith("[[", i)
                parts, i = _read_key(text, i + (2 if is_array else 1))
                table = _resolve(parts, is_array, last_index)
                self._lines.setdefault(table, line)
                i = _skip_to_eol(text, i)
            else:
                parts, i = _read_key(text, i)
                if not parts:  # not a key: give up on this line rather than loop
                    i = _skip_to_eol(text, i + 1)
                    continue
                self._lines.setdefault(table + tuple(parts), line)
                i, line = _skip_value(text, i + 1, line)


def _resolve(parts: list[str], is_array: bool, last_index: dict[KeyPath, int]) -> KeyPath:
    resolved: KeyPath = ()
    for k, name in enumerate(parts):
        resolved = (*resolved, name)
        if is_array and k == len(parts) - 1:
            index = last_index.get(resolved, 0) + 1
            last_index[resolved] = index
            resolved = (*resolved, index)
        elif resolved in last_index:
            resolved = (*resolved, last_index[resolved])
    return resolved


def _skip_to_eol(text: str, i: int) -> int:
    end = text.find("\n", i)
    return len(text) if end < 0 else end


def _read_key(text: str, i: int) -> tuple[list[str], int]:
    """Read a dotted key; stop at '=' or ']' (returned index points at it) or end of line."""
    n = len(text)
    parts: list[str] = []
    while i < n:
        c = text[i]
        if c in " \t.":
            i += 1
        elif c in "=]\n#":
            break
        elif c in "\"'":
            end = i + 1
            while end < n and text[end] != c and text[end] != "\n":
                end += 2 if c == '"' and text[end] == "\\" else 1
            parts.append(text[i + 1 : end])
            i = end + 1
        else:
            end = i
            while end < n and text[end] not in _BARE_KEY_END:
                end += 1
            parts.append(text[i:end])
            i = end
    return parts, i


def _skip_value(text: str, i: int, line: int) -> tuple[int, int]:
    """Skip a value (strings, nested arrays and inline tables); return (index, line) at its end."""
    n = len(text)
    depth = 0
    while i < n:
        c = text[i]
        if c == "\n":
            if depth <= 0:
                return i, line
            line += 1
            i += 1
        elif c == "#":
            i = _skip_to_eol(text, i)
        elif c in "[{":
            depth += 1
            i += 1
        elif c in "]}":
            depth -= 1
            i += 1
        elif c in "\"'":
            i, line = _skip_string(text, i, line)
        else:
            i += 1
    return i, line


def _skip_string(text: str, i: int, line: int) -> tuple[int, int]:
    n = len(text)
    quote = text[i]
    if text.startswith(quote * 3, i):
        end = text.find(quote * 3, i + 3)
        while quote == '"' and end > 0 and _escaped(text, end):
            end = text.find(quote * 3, end + 1)
        if end < 0:
            return n, line + text.count("\n", i)
        end += 3
        while end < n and text[end] == quote:  # up to two quotes may close the content
            end += 1
        return end, line + text.count("\n", i, end)
    j = i + 1
    while j < n and text[j] != quote and text[j] != "\n":
        j += 2 if quote == '"' and text[j] == "\\" else 1
    return j + 1, line


def _escaped(text: str, i: int) -> bool:
    backslashes = 0
    while i - backslashes - 1 >= 0 and text[i - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1
