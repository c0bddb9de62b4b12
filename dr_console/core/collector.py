"""Polls Barman nodes and PostgreSQL servers into FleetSnapshots.

Cost model (FINDINGS §4: every barman call is a ~0.25 s Python start-up):
- fast cycle, every call: per node ONE `sh` that reads the files Barman maintains, and the
  kernel's lock table for running Barman tasks (node_facts) — no Barman process at all; per
  PostgreSQL server one probe on a pooled connection. Nodes are polled concurrently; a slow
  or dead node only delays itself up to its timeout, and its failure becomes an error inside
  the snapshot.
- slow cycle (every console.slow_refresh_interval, or forced): `status` and `list-backups` for
  all the node's servers in one process each; `check` on its own, slower cadence (check_interval,
  default CHECK_EVERY slow cycles: on 30 servers it costs more than everything else together);
  `show-servers` (layout and settings) when the layout is older than LAYOUT_MAX_AGE or unknown.
  In a forced round someone waits: `check` is then split over CHECK_SHARDS processes.
  Servers are named `all`, or the node's configured `servers` list when it has one.
- on change: `list-backups` again when the backup metadata signature of a server changed.
A periodic slow round runs in the background, one at a time per node: a node whose Barman is
slow never delays the fast facts of the others (nor its own). A forced cycle, or a node's first,
waits for it; an on-change catalogue refresh is waited for at most CHANGE_PATIENCE seconds.
Geo-replica state is computed by comparing a passive node's files with its primary's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TypeVar

from dr_console.config import Config, NodeConfig
from dr_console.core import wal
from dr_console.core.barman import BarmanClient
from dr_console.core.barman_errors import BarmanError
from dr_console.core.barman_versions import Capabilities
from dr_console.core.node_facts import (
    NodeFileFacts,
    ServerFileFacts,
    ServerLayout,
    parse_output,
    script_argv,
)
from dr_console.core.postgres import PostgresProbeError, PostgresProber
from dr_console.core.transport import Transport, TransportError, open_transport
from dr_console.core.validation import check_server_name
from dr_console.models import (
    ArchiveQueue,
    Backup,
    BackupCatalogue,
    BackupDetail,
    BarmanCheck,
    BarmanProcess,
    BarmanStatus,
    FleetSnapshot,
    GeoReplica,
    NodeRole,
    NodeSnapshot,
    PostgresFacts,
    RecoveryWindow,
    ServerSnapshot,
    WalStream,
)

LAYOUT_MAX_AGE = 600.0  # seconds between show-servers calls (server set and directories)
CHECK_EVERY = 5  # default check cadence: every 5th slow cycle (5 min at the default 60 s)
CHECK_SHARDS = 3  # concurrent `check` processes in a forced round (see _refresh_checks)
CHECK_SHARD_MIN = 9  # ... from this many servers on a node
CHANGE_PATIENCE = 5.0  # seconds a cycle waits for an on-change list-backups, then moves on
SYNC_PROCESS_NAMES = frozenset({"sync-backup", "sync-wal", "sync-wals"})
# A node's poll runs at most this many commands one after the other: barman --version (once per
# connection), show-servers, the facts script, and the slow round's reports (side by side).
POLL_STAGES = 4
CHECK_BASIS_TASKS = frozenset({"receive-wal"})
GUARD_MARGIN = 5.0  # seconds beyond the commands' own limits before a guard gives up
# However busy the node, its poll ends after this many times its normal limit (node_timeout).
GUARD_SLACK = 2

T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


class PollTimeout(Exception):
    """A node's poll did not finish; the message says what was running and for how long."""


def _poll_timeout_message(node: str, seconds: float, running: list[tuple[str, float]]) -> str:
    if running:
        what, age = max(running, key=lambda r: r[1])
        return (f"poll of {node} did not finish within {seconds:.0f} s: `{what}` had run "
                f"{age:.0f} s")
    return (f"poll of {node} did not finish within {seconds:.0f} s, with no command running on "
            "the node (waiting to connect or for an ssh session)")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


@dataclass
class CollectorStats:
    """Counts for benchmarks and the status line: what the last cycle cost."""

    barman_calls: int = 0
    shell_calls: int = 0
    postgres_probes: int = 0
    cycles: int = 0
    last_cycle_seconds: float = 0.0


def _sync_blocked(passive: _NodeState, server: str, facts: ServerFileFacts | None) -> str | None:
    """Barman's WAL sync on a passive node that no `barman cron` can move on (3.4 to 3.19.1 at
    least): a first sync while the primary's xlog.db held one line records position 0 in
    sync-wals.info, and every later `barman sync-info SERVER WAL 0` is refused by Barman's own
    argument check ("'0' is not a valid positive integer")."""
    if facts is None or facts.sync_wals_position != 0 or not facts.sync_wals_last:
        return None
    layout = passive.layouts.get(server)
    where = f"{layout.wals_directory}/sync-wals.info" if layout is not None else "sync-wals.info"
    return (
        f"Barman's WAL sync is stuck: {where} records position 0, which `barman sync-info` "
        "refuses as not a positive integer, so every `barman cron` on this node fails to ask "
        "the primary; remove that file here and the next cron syncs again"
    )


@dataclass
class _NodeState:
    config: NodeConfig
    transport: Transport
    barman: BarmanClient
    layouts: dict[str, ServerLayout] = field(default_factory=dict)
    layout_at: float | None = None
    layout_error: str | None = None
    statuses: dict[str, BarmanStatus] = field(default_factory=dict)
    status_error: str | None = None
    backups: dict[str, tuple[Backup, ...]] = field(default_factory=dict)
    backups_at: datetime | None = None
    backups_error: str | None = None
    checks: dict[str, tuple[BarmanCheck, ...]] = field(default_factory=dict)
    checks_at: datetime | None = None
    checks_error: str | None = None
    slow_at: float | None = None
    meta_signatures: dict[str, str | None] = field(default_factory=dict)
    check_at: float | None = None  # monotonic start of the last check refresh
    catalogue_dirty: bool = False  # backup metadata changed since list-backups last started
    background: asyncio.Task[None] | None = None  # the node's slow round or catalogue refresh
    facts: NodeFileFacts | None = None
    facts_at: datetime | None = None
    processes: dict[str, tuple[BarmanProcess, ...]] = field(default_factory=dict)
    last: NodeSnapshot | None = None
    capabilities: Capabilities | None = None
    check_basis: frozenset[tuple[str, str]] | None = None  # the fast facts at the last check
    capabilities_connects: int = -1  # transport.connects when the version was read
    version_error: str | None = None

    @property
    def barman_version(self) -> str | None:
        return str(self.capabilities.version) if self.capabilities is not None else None


@dataclass(frozen=True)
class _NodeRound:
    """What one fast round on a node produced (errors included)."""

    reachable: bool
    error: str | None
    facts: NodeFileFacts | None
    facts_error: str | None
    processes_error: str | None


class Collector:
    """Owns transports, Barman clients and PostgreSQL connections for one configuration."""

    def __init__(
        self,
        config: Config,
        *,
        now: Callable[[], datetime] = utcnow,
        transport_factory: Callable[[NodeConfig], Transport] | None = None,
        prober: PostgresProber | None = None,
        check_interval: float | None = None,
    ) -> None:
        self.config = config
        self._now = now
        console = config.console
        self.check_interval = (
            check_interval
            if check_interval is not None
            else console.slow_refresh_interval * CHECK_EVERY
        )
        factory = transport_factory or (
            lambda node: open_transport(node, connect_timeout=console.connect_timeout)
        )
        self._nodes: dict[str, _NodeState] = {}
        for node in config.nodes:
            transport = factory(node)
            timeout = config.command_timeout(node.name)
            client = BarmanClient(
                transport, barman=node.barman, config_file=node.barman_config, timeout=timeout
            )
            self._nodes[node.name] = _NodeState(node, transport, client)
        self._prober = prober or PostgresProber(
            connect_timeout=console.connect_timeout,
            statement_timeout_ms=int(min(console.command_timeout, 30.0) * 1000),
        )
        self._pg_facts: dict[str, PostgresFacts] = {}
        self._pg_errors: dict[str, str] = {}
        self._cycle_lock = asyncio.Lock()
        self.stats = CollectorStats()

    # --- public API -----------------------------------------------------------------------

    @property
    def node_names(self) -> list[str]:
        return list(self._nodes)

    def barman_client(self, node: str) -> BarmanClient:
        return self._nodes[node].barman

    def transport(self, node: str) -> Transport:
        return self._nodes[node].transport

    async def collect(self, *, force_slow: bool = False) -> FleetSnapshot:
        """One cycle over every node and server. Never raises for a node or probe failure."""
        async with self._cycle_lock:  # cycles never overlap, whoever calls
            started = time.monotonic()
            self.stats.cycles += 1
            await asyncio.gather(
                *(self._poll_node(state, force_slow) for state in self._nodes.values()),
                self._probe_postgres(),
            )
            fleet = self._assemble()
            self.stats.last_cycle_seconds = time.monotonic() - started
            return fleet

    async def show_backup(self, node: str, server: str, backup_id: str) -> BackupDetail:
        state = self._nodes[node]
        self.stats.barman_calls += 1
        return await state.barman.show_backup(server, backup_id)

    async def close(self) -> None:
        tasks = [s.background for s in self._nodes.values() if s.background is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(
            *(state.transport.close() for state in self._nodes.values()),
            self._prober.close(),
            return_exceptions=True,
        )

    # --- per node ---------------------------------------------------------------------------

    def _timeout(self, state: _NodeState) -> float:
        return self.config.command_timeout(state.config.name)

    def node_timeout(self, node: str) -> float:
        """The backstop for one node's poll: it runs up to POLL_STAGES commands one after the
        other (each limited to the node's command_timeout), after connecting."""
        state = self._nodes[node]
        return (self._timeout(state) * POLL_STAGES + self.config.console.connect_timeout
                + GUARD_MARGIN)

    @property
    def cycle_timeout(self) -> float:
        """How long a whole cycle may take: nodes are polled side by side, so the slowest."""
        return max((self.node_timeout(n) * GUARD_SLACK for n in self._nodes),
                   default=GUARD_MARGIN) + GUARD_MARGIN

    async def _guard(self, state: _NodeState, coro: Awaitable[T]) -> T:
        """The node's poll, given up after node_timeout, except while a command runs on the
        node within its own timeout: a loaded node queues commands (ssh sessions, CPU), and the
        queue is not the command. A hard cap of GUARD_SLACK times that still ends any poll."""
        name = state.config.name
        limit = self.node_timeout(name)
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            done, _ = await asyncio.wait({task}, timeout=limit)
            while not done:
                running = state.transport.in_flight()
                if running:
                    progressing = all(age <= self._timeout(state) + GUARD_MARGIN
                                      for _, age in running)  # fmt: skip
                else:  # between two commands of the poll
                    progressing = state.transport.idle_for() < GUARD_MARGIN
                if not progressing or loop.time() - started > limit * GUARD_SLACK:
                    raise PollTimeout(_poll_timeout_message(name, loop.time() - started, running))
                done, _ = await asyncio.wait({task}, timeout=1.0)
            return task.result()
        finally:
            if not task.done():  # given up, or this poll itself was cancelled
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _poll_node(self, state: _NodeState, force_slow: bool) -> None:
        try:
            await self._guard(state, self._poll_node_inner(state, force_slow))
        except Exception as exc:  # a node's failure must never break the fleet
            self._mark_unreachable(state, _describe(exc))

    async def _poll_node_inner(self, state: _NodeState, force_slow: bool) -> None:
        monotonic = time.monotonic()
        first = state.slow_at is None
        if force_slow or first:
            # a forced or first round waits for the one in flight, then for its own
            await self._settle_background(state)
        if state.capabilities_connects != state.transport.connects or state.capabilities is None:
            await self._refresh_version(state)
            if state.capabilities is None:
                self._mark_unreachable(state, state.version_error or "barman --version failed")
                return
            state.layout_at = None  # file locations depend on the version
        if state.layout_at is None or (
            (force_slow or first) and monotonic - state.layout_at > LAYOUT_MAX_AGE
        ):
            await self._refresh_layout(state)
        if not state.layouts and state.layout_error:
            self._mark_unreachable(state, state.layout_error)
            return
        slow_due = monotonic - (state.slow_at or 0.0) >= self.config.console.slow_refresh_interval
        round_ = await self._fast_round(state)
        if not round_.reachable:
            self._mark_unreachable(state, round_.error or "unreachable")
            return
        if self._catalogue_changed(state):
            state.catalogue_dirty = True
        busy = state.background is not None and not state.background.done()
        facts_moved = state.check_basis is not None and self._check_basis(state) != (
            state.check_basis
        )
        if force_slow or first:
            state.slow_at = monotonic
            await self._slow_round(state, with_check=True, waited_for=True)
        elif (slow_due or facts_moved) and not busy:
            state.slow_at = monotonic
            # Barman's check is slow, so it runs on its own cadence, and at once when the fast
            # facts it judges have changed (receive-wal stopped or running again, PostgreSQL
            # lost or back): an old result must not contradict what the node shows now.
            check_due = facts_moved or monotonic - (state.check_at or 0.0) >= self.check_interval
            state.background = asyncio.create_task(
                self._in_background(state, self._slow_round(state, check_due))
            )
        elif state.catalogue_dirty and not busy:
            state.background = asyncio.create_task(
                self._in_background(state, self._refresh_backups(state))
            )
            await asyncio.wait({state.background}, timeout=CHANGE_PATIENCE)
        state.last = self._node_snapshot(state, round_)

    async def _in_background(self, state: _NodeState, coro: Awaitable[None]) -> None:
        try:
            # layout refresh, then status / list-backups / check side by side: two stages
            await asyncio.wait_for(coro, timeout=self._timeout(state) * 2 + GUARD_MARGIN)
        except Exception as exc:  # nobody awaits this task: its failure goes into the snapshot
            state.status_error = _describe(exc)

    async def _settle_background(self, state: _NodeState) -> None:
        task = state.background
        if task is not None and not task.done():
            # shielded: if this cycle times out, the round still finishes for the next one
            await asyncio.shield(task)

    def _servers_for(self, state: _NodeState) -> list[str]:
        wanted = set(state.config.servers)
        names = []
        for name in sorted(state.layouts):
            if wanted and name not in wanted:
                continue
            extra = self.config.server(name)
            if extra is not None and extra.nodes and state.config.name not in extra.nodes:
                continue
            names.append(name)
        return names

    async def _refresh_version(self, state: _NodeState) -> None:
        """`barman --version`, once per connection: every version-dependent choice follows it."""
        self.stats.barman_calls += 1
        try:
            text = await state.barman.version()
            capabilities = Capabilities.from_version_text(text)
        except (BarmanError, TransportError, OSError, TimeoutError, ValueError) as exc:
            state.version_error = f"barman --version: {_describe(exc)}"
            state.capabilities = None
            return
        state.capabilities = capabilities
        state.capabilities_connects = state.transport.connects
        state.version_error = None

    async def _refresh_layout(self, state: _NodeState) -> None:
        capabilities = state.capabilities
        if capabilities is None:
            return
        self.stats.barman_calls += 1
        try:
            shown = await state.barman.show_servers(None)
        except (BarmanError, TransportError, OSError, TimeoutError) as exc:
            state.layout_error = _describe(exc)
            return
        layouts = {}
        problems = []
        for name, data in shown.items():
            try:
                # a name no command may carry is reported, not polled (it would fail the node)
                layouts[check_server_name(name)] = ServerLayout.from_show_servers(
                    name, data, capabilities
                )
            except Exception as exc:  # one odd server must not hide the others
                problems.append(f"{name}: {_describe(exc)}")
        state.layouts = layouts
        state.layout_at = time.monotonic()
        state.layout_error = "; ".join(problems) or None

    async def _fast_round(self, state: _NodeState) -> _NodeRound:
        """One `sh` on the node: WAL queue, sync markers, catalogue signature, running tasks."""
        layouts = [state.layouts[s] for s in self._servers_for(state)]
        self.stats.shell_calls += 1
        try:
            result = await state.transport.run(script_argv(layouts), self._timeout(state))
        except TransportError as exc:
            return _NodeRound(False, _describe(exc), None, _describe(exc), _describe(exc))
        if result.returncode != 0 and not result.stdout:
            error = (result.stderr.strip() or "file probe failed").splitlines()[0]
            return _NodeRound(True, None, state.facts, error, error)
        state.facts = parse_output(result.stdout)
        state.facts_at = self._now()
        state.processes = {name: f.processes for name, f in state.facts.servers.items()}
        return _NodeRound(True, None, state.facts, None, None)

    def _catalogue_changed(self, state: _NodeState) -> bool:
        if state.facts is None:
            return False
        changed = False
        for name, facts in state.facts.servers.items():
            previous = state.meta_signatures.get(name)
            if name in state.meta_signatures and previous != facts.meta_signature:
                changed = True
            state.meta_signatures[name] = facts.meta_signature
        return changed

    async def _slow_round(
        self, state: _NodeState, with_check: bool, *, waited_for: bool = False
    ) -> None:
        if state.layout_at is None or time.monotonic() - state.layout_at > LAYOUT_MAX_AGE:
            await self._refresh_layout(state)
        jobs = [self._refresh_status(state), self._refresh_backups(state)]
        if with_check:
            state.check_at = time.monotonic()
            state.check_basis = self._check_basis(state)
            jobs.append(self._refresh_checks(state, waited_for=waited_for))
        await asyncio.gather(*jobs)

    def _check_basis(self, state: _NodeState) -> frozenset[tuple[str, str]]:
        """The fast facts that Barman's check judges too: which servers have receive-wal
        running, and which servers' PostgreSQL the console cannot reach."""
        running = {
            (name, proc.name)
            for name, procs in state.processes.items()
            for proc in procs
            if proc.name in CHECK_BASIS_TASKS
        }
        down = {(name, "postgres unreachable") for name in state.layouts if name in self._pg_errors}
        return frozenset(running | down)

    def _barman_servers(self, state: _NodeState) -> list[str] | None:
        """`all`, unless the node is restricted to some servers: then only those."""
        if not state.config.servers:
            return None
        return self._servers_for(state) or list(state.config.servers)

    async def _refresh_status(self, state: _NodeState) -> None:
        self.stats.barman_calls += 1
        try:
            state.statuses = dict(await state.barman.status(self._barman_servers(state)))
            state.status_error = None
        except (BarmanError, TransportError, OSError, TimeoutError) as exc:
            state.status_error = _describe(exc)

    async def _refresh_backups(self, state: _NodeState) -> None:
        self.stats.barman_calls += 1
        state.catalogue_dirty = False
        try:
            state.backups = dict(await state.barman.list_backups(self._barman_servers(state)))
            state.backups_at = self._now()
            state.backups_error = None
        except (BarmanError, TransportError, OSError, TimeoutError) as exc:
            state.backups_error = _describe(exc)

    async def _refresh_checks(self, state: _NodeState, *, waited_for: bool = False) -> None:
        """One `check` process; when someone waits (a forced round) and there are many servers,
        CHECK_SHARDS processes side by side: check spends much of its time waiting on
        PostgreSQL and ssh, so wall time drops by about that factor for a few more start-ups."""
        names = self._servers_for(state)
        groups: list[list[str] | None] = [self._barman_servers(state)]
        if waited_for and len(names) >= CHECK_SHARD_MIN:
            groups = [names[i::CHECK_SHARDS] for i in range(CHECK_SHARDS)]
        self.stats.barman_calls += len(groups)
        results = await asyncio.gather(
            *(state.barman.check(group) for group in groups), return_exceptions=True
        )
        checks: dict[str, tuple[BarmanCheck, ...]] = {}
        errors = []
        for result in results:
            if isinstance(result, BarmanError | TransportError | OSError | TimeoutError):
                errors.append(_describe(result))
            elif isinstance(result, BaseException):
                raise result
            else:
                checks.update(result)
        if checks or not errors:
            state.checks = checks if not errors else {**state.checks, **checks}
            state.checks_at = self._now()
        state.checks_error = errors[0] if errors else None

    def _mark_unreachable(self, state: _NodeState, error: str) -> None:
        now = self._now()
        servers = dict(state.last.servers) if state.last is not None else {}
        state.last = NodeSnapshot(
            node=state.config.name,
            role=state.config.role,
            site=state.config.site,
            taken_at=now,
            reachable=False,
            error=error,
            servers=servers,  # last good values; their own taken_at shows how stale they are
            barman_version=state.barman_version,
        )

    # --- PostgreSQL -------------------------------------------------------------------------

    async def _probe_postgres(self) -> None:
        targets = {s.name: s.conninfo for s in self.config.servers if s.conninfo}

        async def probe(name: str, conninfo: str) -> None:
            self.stats.postgres_probes += 1
            try:
                self._pg_facts[name] = await asyncio.wait_for(
                    self._prober.probe(conninfo),
                    timeout=self.config.console.connect_timeout
                    + self.config.console.command_timeout,
                )
                self._pg_errors.pop(name, None)
            except (PostgresProbeError, TimeoutError, OSError) as exc:
                self._pg_facts.pop(name, None)
                self._pg_errors[name] = _describe(exc)

        await asyncio.gather(*(probe(n, c) for n, c in targets.items()))

    # --- assembling snapshots ------------------------------------------------------------------

    def _node_snapshot(self, state: _NodeState, round_: _NodeRound) -> NodeSnapshot:
        now = self._now()
        servers = {}
        for name in self._servers_for(state):
            servers[name] = self._server_snapshot(state, name, round_, now)
        return NodeSnapshot(
            node=state.config.name,
            role=state.config.role,
            site=state.config.site,
            taken_at=now,
            reachable=True,
            error=state.layout_error,
            servers=servers,
            barman_version=state.barman_version,
        )

    def _server_snapshot(
        self, state: _NodeState, name: str, round_: _NodeRound, now: datetime
    ) -> ServerSnapshot:
        layout = state.layouts[name]
        facts = round_.facts.servers.get(name) if round_.facts is not None else None
        status = state.statuses.get(name)
        processes = state.processes.get(name, ())
        pg = self._pg_facts.get(name)
        pg_error = self._pg_errors.get(name)
        catalogue = BackupCatalogue(
            taken_at=state.backups_at or now,
            error=state.backups_error,
            backups=state.backups.get(name, ()),
        )
        queue = self._archive_queue(layout, facts, status, pg, pg_error, round_, now)
        stream = (
            None
            if layout.passive
            else self._wal_stream(layout, processes, pg, pg_error, round_, now)
        )
        return ServerSnapshot(
            node=state.config.name,
            server=name,
            role=NodeRole.PASSIVE if layout.passive else state.config.role,
            site=state.config.site,
            taken_at=now,
            status=status,
            status_error=state.status_error,
            wal_stream=stream,
            archive_queue=queue,
            catalogue=catalogue,
            geo=None,  # filled in by _assemble, which sees the primary too
            window=self._window(catalogue, queue, stream, facts, now),
            barman_checks=state.checks.get(name, ()),
            barman_checks_at=state.checks_at,
            barman_checks_error=state.checks_error,
            processes=processes,
            postgres=pg,
            postgres_error=pg_error,
            barman_version=state.barman_version,
        )

    def _archive_queue(
        self,
        layout: ServerLayout,
        facts: ServerFileFacts | None,
        status: BarmanStatus | None,
        pg: PostgresFacts | None,
        pg_error: str | None,
        round_: _NodeRound,
        now: datetime,
    ) -> ArchiveQueue:
        last = facts.last_wal if facts is not None else None
        last_name = last.name if last is not None else None
        last_time = last.time if last is not None else None
        if last_name is None and status is not None:
            last_name, last_time = status.last_archived_wal, status.last_archived_time
        return ArchiveQueue(
            taken_at=now,
            error=round_.facts_error,
            archiver_enabled=layout.archiver,
            pg=pg.archiver if pg is not None and not layout.passive else None,
            pg_error=None if layout.passive else (pg_error or self._no_conninfo(layout.server)),
            barman_failed_count=status.failed_count if status is not None else None,
            last_archived_wal=last_name,
            last_archived_time=last_time,
            incoming_count=facts.incoming_count if facts is not None else None,
            streaming_count=facts.streaming_count if facts is not None else None,
            errors_count=facts.errors_count if facts is not None else None,
            archived_wals_per_hour=status.archived_wals_per_hour if status is not None else None,
        )

    def _no_conninfo(self, server: str) -> str | None:
        extra = self.config.server(server)
        if extra is None or not extra.conninfo:
            return "no conninfo configured for direct PostgreSQL probes"
        return None

    def _wal_stream(
        self,
        layout: ServerLayout,
        processes: tuple[BarmanProcess, ...],
        pg: PostgresFacts | None,
        pg_error: str | None,
        round_: _NodeRound,
        now: datetime,
    ) -> WalStream:
        receive = next((p for p in processes if p.name == "receive-wal"), None)
        running: bool | None = None if round_.processes_error else receive is not None
        slot = receiver = None
        if pg is not None:
            slot = next((s for s in pg.slots if s.slot_name == layout.slot_name), None)
            receiver = next(
                (r for r in pg.replication if r.application_name == layout.receiver_name), None
            )
        lag_bytes = None
        lag_seconds = None
        if receiver is not None:
            lag_bytes = receiver.write_lag_bytes
            if lag_bytes is None:
                lag_bytes = receiver.sent_lag_bytes
            lag_seconds = receiver.write_lag_seconds
        elif slot is not None and slot.retained_bytes is not None:
            # Nothing streams: the WAL the server has and Barman has not received is what the
            # slot holds back (server LSN - restart LSN), and it grows while receive-wal is down.
            lag_bytes = slot.retained_bytes
        errors = [e for e in (round_.processes_error, pg_error) if e]
        if pg is None and pg_error is None:
            errors.append(self._no_conninfo(layout.server) or "")
        return WalStream(
            taken_at=now,
            error="; ".join(e for e in errors if e) or None,
            streaming_archiver=layout.streaming_archiver,
            receive_wal_running=running,
            receive_wal_pid=receive.pid if receive is not None else None,
            slot_name=layout.slot_name,
            slot_active=slot.active if slot is not None else (False if pg is not None else None),
            slot_restart_lsn=slot.restart_lsn if slot is not None else None,
            slot_retained_bytes=slot.retained_bytes if slot is not None else None,
            slot_wal_status=slot.wal_status if slot is not None else None,
            receiver=receiver,
            server_lsn=pg.current_lsn if pg is not None else None,
            lag_bytes=lag_bytes,
            lag_seconds=lag_seconds,
        )

    def _window(
        self,
        catalogue: BackupCatalogue,
        queue: ArchiveQueue,
        stream: WalStream | None,
        facts: ServerFileFacts | None,
        now: datetime,
    ) -> RecoveryWindow:
        done = [b for b in catalogue.backups if b.is_done and b.end_time is not None]
        oldest = min(done, key=lambda b: b.end_time or now) if done else None
        latest = max(done, key=lambda b: b.end_time or now) if done else None
        end = queue.last_archived_time
        # Complete WAL waiting in incoming/ or streaming/ is on the node already: Barman's next
        # cron files it, and get-wal serves it meanwhile; nothing up to it is at risk.
        if facts is not None:
            waiting = [t for t in (facts.incoming_newest, facts.streaming_newest) if t]
            if waiting and (end is None or max(waiting) > end):
                end = max(waiting)
        # WAL streamed into a .partial is on the node too; get-wal -P can replay it.
        if (
            stream is not None
            and stream.receive_wal_running
            and facts is not None
            and facts.partial_mtime is not None
            and (end is None or facts.partial_mtime > end)
        ):
            end = facts.partial_mtime
        end_for_window = None if oldest is None else end
        rpo = (now - end).total_seconds() if end is not None else None
        if stream is not None and stream.receive_wal_running and stream.lag_bytes is not None:
            # Streaming and caught up: what is at risk is the receiver's lag, not the time since
            # the last WAL (an idle database writes none, and loses nothing).
            rpo = stream.lag_seconds if stream.lag_seconds is not None else 0.0
        return RecoveryWindow(
            # The earliest consistent point of a backup is its end: PITR targets before that
            # are refused by PostgreSQL, so the window starts there.
            begin=oldest.end_time if oldest is not None else None,
            end=end_for_window,
            oldest_backup_id=oldest.backup_id if oldest is not None else None,
            latest_backup_id=latest.backup_id if latest is not None else None,
            rpo_seconds=max(0.0, rpo) if rpo is not None else None,
        )

    def _assemble(self) -> FleetSnapshot:
        now = self._now()
        nodes: dict[str, NodeSnapshot] = {}
        for name, state in self._nodes.items():
            if state.last is None:
                state.last = NodeSnapshot(
                    node=name,
                    role=state.config.role,
                    site=state.config.site,
                    taken_at=now,
                    reachable=False,
                    error="not polled yet",
                )
            nodes[name] = state.last
        for name, snapshot in list(nodes.items()):
            state = self._nodes[name]
            if state.config.role is not NodeRole.PASSIVE or not snapshot.reachable:
                continue
            servers = {
                server: replace(snap, geo=self._geo(state, snap, now))
                for server, snap in snapshot.servers.items()
            }
            nodes[name] = replace(snapshot, servers=servers)
            state.last = nodes[name]
        return FleetSnapshot(taken_at=now, nodes=nodes)

    def _geo(self, passive: _NodeState, snap: ServerSnapshot, now: datetime) -> GeoReplica:
        primary_name = passive.config.primary
        base = GeoReplica(taken_at=now, passive_node=passive.config.name, primary_node=primary_name)
        facts = passive.facts.servers.get(snap.server) if passive.facts is not None else None
        sync_processes = tuple(p for p in snap.processes if p.name in SYNC_PROCESS_NAMES)
        last_sync = facts.primary_info_mtime if facts is not None else None
        passive_wal = facts.last_wal if facts is not None else None
        passive_ids = {
            b.backup_id: b.status for b in (snap.catalogue.backups if snap.catalogue else ())
        }
        base = replace(
            base,
            last_sync=last_sync,
            sync_processes=sync_processes,
            passive_last_wal=passive_wal.name
            if passive_wal
            else (facts.sync_wals_last if facts else None),
            syncing_backups=tuple(i for i, s in passive_ids.items() if s == "SYNCING"),
            sync_blocked=_sync_blocked(passive, snap.server, facts),
        )
        primary = self._nodes.get(primary_name) if primary_name else None
        if primary is None:
            return replace(base, error="no primary node configured for this passive node")
        primary_snap = primary.last
        if primary_snap is None or not primary_snap.reachable:
            reason = primary_snap.error if primary_snap is not None else "not polled yet"
            return replace(base, error=f"primary node {primary_name} unreachable: {reason}")
        primary_facts = (
            primary.facts.servers.get(snap.server) if primary.facts is not None else None
        )
        primary_backups = primary.backups.get(snap.server, ())
        missing = tuple(
            b.backup_id
            for b in primary_backups
            if b.is_done and passive_ids.get(b.backup_id) not in ("DONE", "SYNCING")
        )
        missing_ends = [
            b.end_time for b in primary_backups if b.backup_id in missing and b.end_time
        ]
        primary_done = {b.backup_id for b in primary_backups if b.is_done}
        extra = tuple(i for i, s in passive_ids.items() if s == "DONE" and i not in primary_done)
        primary_wal = primary_facts.last_wal if primary_facts is not None else None
        lag_segments = lag_bytes = None
        lag_seconds: float | None = None
        layout = primary.layouts.get(snap.server)
        segment_size = layout.segment_size if layout is not None else wal.DEFAULT_SEGMENT_SIZE
        passive_name = base.passive_last_wal
        if primary_wal is not None and passive_name:
            lag_segments = wal.segments_between(
                passive_name[:24], primary_wal.name[:24], segment_size
            )
            if lag_segments is not None:
                lag_bytes = lag_segments * segment_size
            if lag_segments == 0:
                lag_seconds = 0.0
            elif primary_wal.time is not None and passive_wal is not None and passive_wal.time:
                lag_seconds = max(0.0, (primary_wal.time - passive_wal.time).total_seconds())
        return replace(
            base,
            missing_backups=missing,
            oldest_missing_end=min(missing_ends) if missing_ends else None,
            extra_backups=extra,
            primary_last_wal=primary_wal.name if primary_wal is not None else None,
            wal_lag_segments=lag_segments,
            wal_lag_bytes=lag_bytes,
            wal_lag_seconds=lag_seconds,
        )


async def collect_once(config: Config, *, force_slow: bool = True) -> FleetSnapshot:
    """Headless helper: one full cycle, then close every connection."""
    collector = Collector(config)
    try:
        return await collector.collect(force_slow=force_slow)
    finally:
        await collector.close()
