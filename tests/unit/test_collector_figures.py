"""Figures the collector derives from one round's facts (recorded Barman layout, PostgreSQL facts
as the probe reads them), without a lab."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from barman_recordings import load, result

from dr_console.config import Config, parse_config
from dr_console.core import checks
from dr_console.core import collector as collector_module
from dr_console.core.barman_parse import load_json, parse_show_servers
from dr_console.core.barman_versions import Capabilities
from dr_console.core.collector import Collector, _NodeRound
from dr_console.core.node_facts import ServerFileFacts, ServerLayout
from dr_console.core.transport_base import CommandResult, Transport
from dr_console.core.transport_local import LocalTransport
from dr_console.models import (
    ArchiveQueue,
    Backup,
    BackupCatalogue,
    FleetSnapshot,
    Health,
    NodeRole,
    NodeSnapshot,
    PostgresFacts,
    ReplicationSlot,
    ServerSnapshot,
    WalStream,
)

NOW = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)
CONFIG = parse_config('[[nodes]]\nname = "bserver"\nssh = "bm@bserver"\n', Path("t.toml"))
MIB = 1024 * 1024


def layout() -> ServerLayout:
    shown = parse_show_servers(load_json(load("primary-show-servers")["stdout"], "show-servers"))
    return ServerLayout.from_show_servers(
        "pgserver", shown["pgserver"], Capabilities.from_version_text("3.19.1")
    )


def postgres(retained: int) -> PostgresFacts:
    slot = ReplicationSlot("barman", "physical", False, None, "0/5000000", retained, "reserved")
    return PostgresFacts(False, "15.18", "0/8700000", None, None, (), (slot,), NOW)


def test_with_receive_wal_stopped_the_unreceived_wal_is_the_stream_lag() -> None:
    collector = Collector(CONFIG, transport_factory=lambda node: LocalTransport(node.name))
    round_ = _NodeRound(True, None, None, None, None)
    stream = collector._wal_stream(layout(), (), postgres(130 * MIB), None, round_, NOW)
    assert stream.receive_wal_running is False and stream.receiver is None
    assert stream.lag_bytes == 130 * MIB  # server LSN - the slot's restart LSN, not "-"

    server = ServerSnapshot("bserver", "pgserver", NodeRole.PRIMARY, "X", NOW, wal_stream=stream)
    node = NodeSnapshot("bserver", NodeRole.PRIMARY, "X", NOW, True, servers={"pgserver": server})
    results = {r.check: r for r in checks.evaluate_server(server, FleetSnapshot(NOW, {
        "bserver": node}), CONFIG)}
    lag = results["stream_lag"]
    assert lag.status is Health.WARNING  # 130 MiB: over the 64 MiB warning, under 512 MiB
    assert lag.detail.startswith("130.0 MiB of WAL not received: nothing streams")


class SlowNode(Transport):
    """Answers each Barman command with the real recording for it, after DELAY seconds."""

    def __init__(self, name: str, delay: float) -> None:
        self.name = name
        self.delay = delay
        self.commands: list[str] = []
        self.facts = "N 1796200000\nS pgserver\n"  # what the facts script prints

    async def run(
        self, argv: Sequence[str], timeout: float, stdin: str | None = None
    ) -> CommandResult:
        words = list(argv)
        if words[0] == "sh":
            what = "facts"
        elif "--version" in words:
            what = "--version"
        else:
            what = next(w for w in words[1:] if not w.startswith("-") and w != "json")
        self.commands.append(what)
        await asyncio.sleep(self.delay)
        if what == "facts":
            return CommandResult(tuple(words), 0, self.facts, "", self.delay)
        name = {"show-servers": "primary-show-servers", "status": "primary-status",
                "list-backups": "primary-list-backups", "check": "primary-check"}.get(
                    what, "primary-version")
        recorded = result(name)
        return CommandResult(tuple(words), recorded.returncode, recorded.stdout,
                             recorded.stderr, self.delay)

    async def close(self) -> None:
        return None


async def test_a_node_whose_commands_each_take_most_of_the_limit_is_reachable() -> None:
    """Four commands one after the other (version, show-servers, facts, the slow round), each
    within command_timeout: the node's poll must not time out as a whole."""
    config = parse_config(
        "[console]\ncommand_timeout = 2\n" '[[nodes]]\nname = "bserver"\nssh = "bm@bserver"\n',
        Path("t.toml"),
    )
    node = SlowNode("bserver", delay=1.9)
    collector = Collector(config, transport_factory=lambda _: node)
    fleet = await collector.collect(force_slow=True)
    snap = fleet.nodes["bserver"]
    assert snap.reachable, snap.error
    assert snap.barman_version == "3.19.1" and "pgserver" in snap.servers
    assert node.commands[:3] == ["--version", "show-servers", "facts"]


def _one_node(command_timeout: float) -> Config:
    return parse_config(
        f"[console]\ncommand_timeout = {command_timeout}\nconnect_timeout = 0.1\n"
        '[[nodes]]\nname = "bserver"\nssh = "bm@bserver"\n',
        Path("t.toml"),
    )


class OneSessionNode(SlowNode):
    """A loaded node: one command at a time (like a full MaxSessions); the others queue, and
    the queue is not their run time (the transport's timeout starts when a command starts)."""

    def __init__(self, name: str, delay: float) -> None:
        super().__init__(name, delay)
        self.session = asyncio.Semaphore(1)

    async def run(
        self, argv: Sequence[str], timeout: float, stdin: str | None = None
    ) -> CommandResult:
        async with self.session:
            token = self.began(argv)
            try:
                return await super().run(argv, timeout, stdin)
            finally:
                self.ended(token)


async def test_commands_queued_on_a_loaded_node_do_not_time_its_poll_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Six commands of 0.9 s each, one at a time (the slow round's three queue behind each
    other): 5.4 s in all, more than the node's whole-poll limit (4.2 s here), but every command
    ran within its own 1 s limit. The node is reachable; a hang would still be caught."""
    monkeypatch.setattr(collector_module, "GUARD_MARGIN", 0.1)
    config = _one_node(command_timeout=1)
    node = OneSessionNode("bserver", delay=0.9)
    collector = Collector(config, transport_factory=lambda _: node)
    assert collector.node_timeout("bserver") < 6 * 0.9
    fleet = await collector.collect(force_slow=True)
    snap = fleet.nodes["bserver"]
    assert snap.reachable, snap.error
    assert len(node.commands) >= 6


async def test_a_poll_stuck_with_no_command_running_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(collector_module, "GUARD_MARGIN", 0.1)
    config = _one_node(command_timeout=0.2)
    node = SlowNode("bserver", delay=0.0)
    collector = Collector(config, transport_factory=lambda _: node)
    state = collector._nodes["bserver"]

    async def hang() -> None:
        await asyncio.sleep(30)

    with pytest.raises(collector_module.PollTimeout) as info:
        await collector._guard(state, hang())
    assert str(info.value).startswith("poll of bserver did not finish within ")
    assert "no command running on the node" in str(info.value)


def test_one_node_with_a_longer_command_timeout_sets_the_cycle_limit() -> None:
    config = parse_config(
        "[console]\ncommand_timeout = 5\nconnect_timeout = 3\n"
        '[[nodes]]\nname = "a"\nssh = "bm@a"\n'
        '[[nodes]]\nname = "b"\nssh = "bm@b"\ncommand_timeout = 50\n',
        Path("t.toml"),
    )
    collector = Collector(config, transport_factory=lambda n: LocalTransport(n.name))
    assert collector.node_timeout("a") < collector.node_timeout("b")
    # the app waits for the slowest node's own commands, not the console's default
    assert collector.cycle_timeout > 50 * 4


async def test_barmans_check_runs_again_when_receive_wal_comes_back() -> None:
    """An old check result (receive_wal_running FAILED) must not outlive the fast facts that
    contradict it: the check is re-run as soon as receive-wal is seen running again."""
    node = SlowNode("bserver", delay=0.0)
    collector = Collector(CONFIG, transport_factory=lambda _: node)
    await collector.collect(force_slow=True)
    await collector.collect()
    assert node.commands.count("check") == 1  # nothing moved: the check waits for its cadence
    node.facts += "K .pgserver-receive-wal.lock 4321\n"  # receive-wal holds its lock again
    fleet = await collector.collect()
    assert [p.name for p in fleet.nodes["bserver"].servers["pgserver"].processes] == [
        "receive-wal"]
    background = collector._nodes["bserver"].background
    assert background is not None
    await background
    assert node.commands.count("check") == 2
    await collector.collect()
    assert node.commands.count("check") == 2  # and not again while nothing moves
    await collector.close()


def test_wal_already_waiting_on_the_node_counts_for_rpo_and_the_window() -> None:
    """receive-wal stopped: the newest complete WAL in streaming/ (not yet filed by cron) is on
    the node, so the window ends there and RPO counts from it, not from xlog.db's last line."""
    collector = Collector(CONFIG, transport_factory=lambda node: LocalTransport(node.name))
    done = Backup("20261201T200000", "DONE", end_time=NOW - timedelta(hours=1))
    catalogue = BackupCatalogue(taken_at=NOW, backups=(done,))
    queue = ArchiveQueue(taken_at=NOW, last_archived_wal="000000010000000000000010",
                         last_archived_time=NOW - timedelta(seconds=115))
    stream = WalStream(taken_at=NOW, streaming_archiver=True, receive_wal_running=False)
    facts = ServerFileFacts(server="pgserver", streaming_count=1,
                            streaming_newest=NOW - timedelta(seconds=15))
    window = collector._window(catalogue, queue, stream, facts, NOW)
    assert window.end == NOW - timedelta(seconds=15)
    assert window.rpo_seconds == 15.0
    # with nothing waiting, the last catalogued WAL decides, as before
    bare = collector._window(catalogue, queue, stream, ServerFileFacts("pgserver"), NOW)
    assert bare.end == NOW - timedelta(seconds=115) and bare.rpo_seconds == 115.0
