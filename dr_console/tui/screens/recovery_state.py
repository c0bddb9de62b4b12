"""What the recovery walkthrough has chosen so far, and how it reaches the nodes. No Textual here.

The steps call the same core functions as `drconsole --run recover` (headless_recovery): this
module only gathers their inputs (the source from the console's state, the Barman client and
the transports from the app's JobManager) and renders their results as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from dr_console.config import Config
from dr_console.core import fmt
from dr_console.core.barman import BarmanClient
from dr_console.core.jobs import JobManager
from dr_console.core.preflight import PreflightReport, RefusalKind
from dr_console.core.recovery import (
    Destination,
    RecoveryOptions,
    RecoveryPlan,
    RecoveryPlanError,
    RecoveryTarget,
    RestoreHost,
)
from dr_console.core.recovery_source import RecoverySource
from dr_console.core.transport import Transport
from dr_console.core.transport_relay import RelayTransport
from dr_console.models import Backup, NodeRole, RecoveryWindow
from dr_console.tui.state import ServerState

_RESTORE_HOST_RE = re.compile(
    r"(?:(?P<user>[A-Za-z0-9_][A-Za-z0-9_.-]*)@)?(?P<host>[A-Za-z0-9_][A-Za-z0-9_.-]*)"
    r"(?::(?P<port>[0-9]{1,5}))?"
)


@dataclass
class WizardState:
    """The operator's choices, step by step (a later step is reset when an earlier one changes)."""

    server: str
    source: RecoverySource
    target: RecoveryTarget | None = None
    backup: Backup | None = None
    backup_why: str = ""
    destination: Destination | None = None
    preflight: PreflightReport | None = None
    options: RecoveryOptions = field(default_factory=RecoveryOptions)
    plan: RecoveryPlan | None = None

    @property
    def node(self) -> str:
        return self.source.node.name


def source_from_state(config: Config, state: ServerState) -> RecoverySource:
    """The source as pick_source would build it, from the console's merged state: the catalogue
    is the last good one (a poll that skipped the slow facts does not empty it)."""
    snap = state.snapshot
    if snap.catalogue is None and state.catalogue.value is not None:
        snap = replace(snap, catalogue=state.catalogue.value)
    return RecoverySource(config.node(state.node), snap)


def window_text(window: RecoveryWindow | None) -> str:
    if window is None or window.begin is None:
        return "window unknown (no DONE backup seen yet)"
    end = window.end.isoformat(sep=" ", timespec="seconds") if window.end else "?"
    return f"{window.begin.isoformat(sep=' ', timespec='seconds')} → {end}"


def source_lines(source: RecoverySource) -> list[str]:
    node = source.node
    role = "primary site" if node.role is NodeRole.PRIMARY else "passive (geo) node"
    site = f", site {node.site}" if node.site else ""
    window = source.window
    rpo = fmt.duration(window.rpo_seconds) if window and window.rpo_seconds is not None else "?"
    done = sum(1 for b in source.backups if b.is_done)
    return [
        f"{source.snapshot.server} on {node.name} ({role}{site})",
        f"  window {window_text(window)}",
        f"  RPO {rpo} · {done} DONE backup(s) · last WAL {source.last_wal or '?'}",
    ]


def backup_line(backup: Backup) -> str:
    ends = backup.end_time.isoformat(sep=" ", timespec="seconds") if backup.end_time else "?"
    return f"{backup.backup_id}  ends {ends}  {fmt.size(backup.size_bytes)}  {backup.status}"


def done_backups(source: RecoverySource) -> list[Backup]:
    """DONE backups, newest end first (the order choose_backup considers them)."""
    done = [b for b in source.backups if b.is_done]
    return sorted(done, key=lambda b: b.end_time.timestamp() if b.end_time else 0.0, reverse=True)


_GROUPS: tuple[tuple[str, frozenset[RefusalKind], str], ...] = (
    (
        "destination absent or empty (never overwritten)",
        frozenset({RefusalKind.NOT_EMPTY, RefusalKind.NOT_A_DIRECTORY, RefusalKind.UNREADABLE}),
        "",
    ),
    (
        "no postmaster.pid, no running server",
        frozenset({RefusalKind.RUNNING_SERVER, RefusalKind.PID_FILE}),
        "none there",
    ),
    ("writable by the recovering user", frozenset({RefusalKind.NOT_WRITABLE}), "yes"),
)


def preflight_rows(report: PreflightReport) -> list[tuple[str, str, str]]:
    """(status word, check, detail) for each pre-flight check; REFUSED rows block the next step."""
    rows: list[tuple[str, str, str]] = []
    by_kind = {r.kind: r.message for r in report.refusals}
    for title, kinds, fine in _GROUPS:
        hits = [by_kind[k] for k in kinds if k in by_kind]
        if hits:
            rows.append(("REFUSED", title, "; ".join(hits)))
        else:
            rows.append(("OK", title, fine or ("exists, empty" if report.exists else "absent")))
    need, free = report.need_bytes, report.free_bytes
    space = "free space ≥ backup + WAL"
    if RefusalKind.NO_SPACE in by_kind:
        rows.append(("REFUSED", space, by_kind[RefusalKind.NO_SPACE]))
    elif need is None or free is None:
        rows.append(("WARNING", space, "not compared: size or free space unknown"))
    else:
        rows.append(("OK", space, f"{fmt.size(free)} free, needs {fmt.size(need)}"))
    if RefusalKind.PORT_BUSY in by_kind:
        rows.append(("REFUSED", "port free", by_kind[RefusalKind.PORT_BUSY]))
    else:
        rows.append(("n/a", "port free", "a drill checks its own spare port before it starts"))
    return rows


def parse_restore_host(text: str) -> RestoreHost:
    """`[user@]host[:port]`: the Barman node as the destination reaches it."""
    match = _RESTORE_HOST_RE.fullmatch(text.strip())
    if match is None:
        raise RecoveryPlanError(
            f"Barman host {text.strip()!r} is not [user@]host[:port] as the destination reaches it"
        )
    port = int(match["port"]) if match["port"] else None
    if port is not None and not 1 <= port <= 65535:
        raise RecoveryPlanError(f"port {port} is not a TCP port")
    return RestoreHost(host=match["host"], user=match["user"], port=port)


def restore_host_text(host: RestoreHost | None) -> str:
    if host is None:
        return ""
    text = f"{host.user}@{host.host}" if host.user else host.host
    return f"{text}:{host.port}" if host.port else text


def parse_jobs(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 64:
        raise RecoveryPlanError(f"parallel jobs {text!r}: a number from 1 to 64, or empty")
    return int(text)


def target_text(target: RecoveryTarget) -> str:
    """The target as typed, and a time also in UTC: the zone is always visible."""
    text = target.describe()
    if target.time is not None:
        utc = target.time.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
        text += f" ({utc} UTC)"
    return text


def stamp(when: datetime | None) -> str:
    return when.isoformat(sep=" ", timespec="seconds") if when else "?"


@dataclass(frozen=True)
class RecoveryServices:
    """The nodes as the walkthrough reaches them: the app's JobManager and its transports."""

    config: Config
    jobs: JobManager

    def transport(self, node: str) -> Transport:
        transport = self.jobs.transports.get(node)
        if transport is None:
            raise RecoveryPlanError(f"no connection to node {node}: it is not in the job manager")
        return transport

    def client(self, node: str) -> BarmanClient:
        cfg = self.config.node(node)
        return BarmanClient(
            self.transport(node),
            barman=cfg.barman,
            config_file=cfg.barman_config,
            timeout=self.command_timeout(node),
        )

    def command_timeout(self, node: str) -> float:
        return self.config.command_timeout(node)

    def dest_transport(self, node: str, dest: Destination) -> Transport:
        """Where the destination lives: the node itself, or the remote host via the node."""
        here = self.transport(node)
        if not dest.remote:
            return here
        return RelayTransport(
            here, dest.ssh_target or "", connect_timeout=self.config.console.connect_timeout
        )
