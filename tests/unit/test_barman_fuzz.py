"""Every parser is total: malformed input gives BarmanOutputError, never another exception.

Inputs are arbitrary JSON values, arbitrary text, and real recordings damaged at random
(truncated, or one nested value replaced by something of another type or size)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections.abc import Callable, Sequence
from typing import Any

from barman_recordings import load, names
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dr_console.core.barman import BarmanClient, BarmanError
from dr_console.core.barman_errors import BarmanOutputError
from dr_console.core.barman_parse import (
    load_json,
    parse_check,
    parse_diagnose,
    parse_list_backups,
    parse_list_processes,
    parse_list_servers,
    parse_messages,
    parse_nagios,
    parse_replication_status,
    parse_show_backup,
    parse_show_servers,
    parse_status,
    parse_sync_info,
)
from dr_console.core.transport_base import CommandResult, LineStream, Transport

DOC_PARSERS: dict[str, Callable[[Any], object]] = {
    "list-servers": parse_list_servers,
    "show-servers": parse_show_servers,
    "status": parse_status,
    "check": parse_check,
    "list-backups": parse_list_backups,
    "show-backup": lambda d: parse_show_backup(d, "pgserver"),
    "replication-status": parse_replication_status,
    "list-processes": parse_list_processes,
    "messages": parse_messages,
}
TEXT_PARSERS: dict[str, Callable[[str], object]] = {
    "load_json": lambda t: load_json(t, "x"),
    "sync-info": lambda t: parse_sync_info(t, "pgserver"),
    "diagnose": parse_diagnose,
    "nagios": parse_nagios,
}
# which parser reads which recording
RECORDING_PARSER = {
    "list-servers": "list-servers", "show-servers": "show-servers", "status": "status",
    "check": "check", "list-backups": "list-backups", "show-backup": "show-backup",
    "replication-status": "replication-status", "list-processes": "list-processes",
}

scalars = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30)
    | st.sampled_from(["EMPTY", "DONE", "SYNCING", "OK", "FAILED", "True", "None",
                       "0/7000028", "00000001000000000000000B, at Mon Nov 30 17:19:51 2026",
                       "1796059182", "-99999999999999999999", "189.74/hour", "99.96%"])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(
        st.sampled_from(["pgserver", "_INFO", "_ERROR", "status", "message", "backup_id",
                         "end_time_timestamp", "streaming_clients", "pid", "name", "hint",
                         "base_backup_information", "wals", "backups", "time", "size"])
        | st.text(max_size=8),
        inner,
        max_size=5,
    ),
    max_leaves=25,
)


def assert_total(fn: Callable[[Any], object], value: Any) -> None:
    try:
        fn(value)
    except BarmanOutputError as exc:
        assert exc.message and "\n" not in exc.message[:1]


@given(json_values)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_document_parsers_accept_or_refuse_any_json_value(value: Any) -> None:
    for fn in DOC_PARSERS.values():
        assert_total(fn, value)
    # also wrapped in a server entry, where the real shapes live
    for fn in DOC_PARSERS.values():
        assert_total(fn, {"pgserver": value})


@given(st.text(max_size=200) | json_values.map(json.dumps))
@settings(max_examples=300)
def test_text_parsers_accept_or_refuse_any_text(text: str) -> None:
    for fn in TEXT_PARSERS.values():
        assert_total(fn, text)


def test_pathological_text_is_refused_cleanly() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    huge_int = ('{"pgserver": [{"backup_id": "x", "status": "DONE", "size_bytes": '
                + "9" * 5000 + "}]}")
    for text in (deep, huge_int, '{"a": NaN}', "\x00", "{" * 10, '{"pgserver": 1e400}'):
        for fn in TEXT_PARSERS.values():
            assert_total(fn, text)
        try:
            doc = load_json(text, "x")
        except BarmanOutputError:
            continue
        for dfn in DOC_PARSERS.values():
            assert_total(dfn, doc)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replace(doc: Any, path: Sequence[Any], new: Any) -> Any:
    if not path:
        return new
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return doc


def _recordings_for(command: str) -> list[str]:
    """Recordings of `barman -f json COMMAND ...` that parsed cleanly."""
    out = []
    for n in names():
        argv = load(n)["argv"]
        if argv[1:4] == ["-f", "json", command]:
            try:
                load_json(load(n)["stdout"], command)
            except BarmanOutputError:
                continue
            out.append(n)
    return out


@given(st.data())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_damaged_recordings_never_escape_as_other_exceptions(data: st.DataObject) -> None:
    command = data.draw(st.sampled_from(sorted(RECORDING_PARSER)))
    candidates = _recordings_for(command)
    assert candidates, f"no recording for {command}"
    name = data.draw(st.sampled_from(candidates))
    text = load(name)["stdout"]
    parser = DOC_PARSERS[RECORDING_PARSER[command]]
    # 1) truncated text
    cut = data.draw(st.integers(min_value=0, max_value=len(text)))
    with contextlib.suppress(BarmanOutputError):
        parser(load_json(text[:cut], command))
    # 2) one nested value replaced
    doc = json.loads(text)
    path = data.draw(st.sampled_from(_paths(doc)))
    assert_total(parser, _replace(doc, path, data.draw(json_values)))


class Garbage(Transport):
    name = "garbage"

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.answer = (returncode, stdout, stderr)

    async def run(
        self, argv: Sequence[str], timeout: float, stdin: str | None = None
    ) -> CommandResult:
        rc, out, err = self.answer
        return CommandResult(tuple(argv), rc, out, err, 0.0)

    def stream(self, argv: Sequence[str], timeout: float | None = None) -> LineStream:
        raise NotImplementedError

    async def close(self) -> None:
        return None


@given(st.integers(min_value=0, max_value=255), st.text(max_size=80) | json_values.map(json.dumps),
       st.text(max_size=40))
@settings(max_examples=150, deadline=None)
def test_the_client_only_raises_barman_errors_for_any_output(
    rc: int, stdout: str, stderr: str
) -> None:
    client = BarmanClient(Garbage(rc, stdout, stderr))

    async def every_call() -> None:
        calls = [client.version(), client.list_servers(), client.show_servers(), client.status(),
                 client.check(), client.check_nagios(), client.list_backups(),
                 client.show_backup("pgserver", "latest"), client.replication_status(),
                 client.list_processes(["pgserver"]), client.sync_info("pgserver"),
                 client.diagnose()]
        for call in calls:
            try:
                await call
            except BarmanError as exc:
                assert exc.message
                assert exc.argv and exc.argv[0] == "barman"

    asyncio.run(every_call())
