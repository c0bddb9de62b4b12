#!/usr/bin/env python3
"""Record real Barman output from the running lab into tests/recordings/<name>.json.

Run as root, with the default lab up (`drconsole lab up` or the tests' lab fixture):

    .venv/bin/python scripts/record_barman.py [--lab-dir /var/tmp/drconsole-lab] [--only NAME...]
                                              [--out DIR]

The lab's Barman decides what is recorded: 3.19.1 (the default lab) writes every recording into
tests/recordings/; any other version (`scripts/record_versions.py` builds a lab per version)
writes into tests/recordings/barman-<version>/ and records the steady state of both nodes, the
operations' output and the refusals; the provoked partial shapes need `list-processes`
(Barman 3.14+) to find the backup they interrupt, so they are recorded only where it exists.

Every command is built by dr_console.core.barman.BarmanClient (so the recorded argv is exactly
what the adapter sends) and run as the lab's Barman users (bserver: drlab-bmuser, geobserver:
drlab-geobmuser) with their own HOME, so Barman reads their ~/.barman.conf. Each file holds
{"argv", "returncode", "stdout", "stderr", "barman_version", "recorded_at", "node", "note"}.

Partial shapes are provoked for real and cleaned up: a backup refused because another runs, a
backup held EMPTY by a spread checkpoint (interrupted like Ctrl-C, then the failed backup is
deleted; a scratch database makes the dirty pages and is dropped), and a backup SYNCING on the
passive node (the backup this script took is deleted again on both nodes). The lab is shared, so
the script waits for other backups and retries deletes that Barman refuses while busy. It leaves
no barman process of its own running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dr_console.core.barman import BarmanClient, BarmanError  # noqa: E402
from dr_console.core.barman_versions import Capabilities, Feature  # noqa: E402
from dr_console.core.transport_base import CommandResult, LineStream, Transport  # noqa: E402
from dr_console.lab.errors import LabError  # noqa: E402
from dr_console.lab.lab import Lab  # noqa: E402
from dr_console.lab.proc import Account  # noqa: E402
from dr_console.lab.settings import LabSettings  # noqa: E402
from dr_console.lab.sshd import remote_path  # noqa: E402
from dr_console.lab.state import LabState  # noqa: E402

OUT = REPO / "tests" / "recordings"
DEFAULT_VERSION = LabSettings().barman_version
READY_FILE = Path("/tmp/drlab-ready")
COMMAND_TIMEOUT = 120.0
LOCK_WAIT = 300.0  # the lab is shared: how long to wait for another backup to end
SCRATCH_DB = "drconsole_recording"


class AccountTransport(Transport):
    """Runs argv locally as a lab account with a clean environment (HOME = its home)."""

    def __init__(self, name: str, account: Account, path: str) -> None:
        self.name = name
        self.account = account
        self.path = path
        self.last: CommandResult | None = None

    def _kwargs(self) -> dict[str, Any]:
        home = self.account.home
        return {
            "user": self.account.uid,
            "group": self.account.gid,
            "extra_groups": [],
            "env": self.account.environment(self.path),
            "cwd": str(home if home.is_dir() else "/"),
        }

    async def start(self, argv: Sequence[str]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            **self._kwargs(),
        )

    async def run(
        self, argv: Sequence[str], timeout: float, stdin: str | None = None
    ) -> CommandResult:
        started = time.monotonic()
        proc = await self.start(argv)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode is not None
        self.last = CommandResult(
            argv=tuple(argv),
            returncode=proc.returncode,
            stdout=out.decode(errors="replace"),
            stderr=err.decode(errors="replace"),
            elapsed=time.monotonic() - started,
        )
        return self.last

    def stream(self, argv: Sequence[str], timeout: float | None = None) -> LineStream:
        raise NotImplementedError("the recorder only runs commands to completion")

    async def close(self) -> None:
        return None


class Recorder:
    def __init__(self, version: str, only: set[str] | None, out: Path) -> None:
        self.version = version
        self.only = only
        self.out = out
        self.written: list[str] = []

    def wanted(self, name: str) -> bool:
        return self.only is None or name in self.only

    def save(self, name: str, node: str, result: CommandResult, note: str = "") -> None:
        if not self.wanted(name):
            return
        doc = {
            "argv": list(result.argv),
            "returncode": result.returncode,
            "stdout": result.stdout,
            "stderr": result.stderr,
            "barman_version": self.version,
            "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "node": node,
            "note": note,
        }
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / f"{name}.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        self.written.append(name)
        print(f"  {name}: rc={result.returncode} ({len(result.stdout)} bytes)", flush=True)


async def record_call(
    rec: Recorder,
    name: str,
    node: str,
    transport: AccountTransport,
    call: Callable[[], Awaitable[Any]],
    note: str = "",
) -> Any:
    """Run one BarmanClient call and save the raw result, whether it parsed or raised."""
    transport.last = None
    value: Any = None
    try:
        value = await call()
    except BarmanError as exc:
        value = exc
    if transport.last is None:
        raise SystemExit(f"{name}: no command was run")
    rec.save(name, node, transport.last, note)
    return value


async def record_argv(
    rec: Recorder, name: str, node: str, transport: AccountTransport, argv: list[str],
    note: str = "",
) -> CommandResult:
    result = await transport.run(argv, COMMAND_TIMEOUT)
    rec.save(name, node, result, note)
    return result


async def wait_until(
    what: str, probe: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await probe():
            return
        await asyncio.sleep(interval)
    raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")


async def finish(proc: asyncio.subprocess.Process, what: str, timeout: float) -> tuple[int, str]:
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        await proc.wait()
        raise SystemExit(f"{what} did not finish within {timeout:g} s; it was stopped") from None
    assert proc.returncode is not None
    return proc.returncode, (out + err).decode(errors="replace")


def load_lab(lab_dir: Path) -> tuple[Lab, Account, Account, str]:
    if LabState.load(lab_dir) is None:
        raise SystemExit(f"no lab found in {lab_dir} (start it first: drconsole lab up)")
    lab = Lab.at(lab_dir)
    try:
        return lab, lab.account("bserver"), lab.account("geobserver"), remote_path(lab.venv_bin)
    except LabError as exc:
        raise SystemExit(str(exc)) from None


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lab-dir", type=Path, default=LabSettings().base_dir)
    parser.add_argument("--only", nargs="*", help="record only these names")
    parser.add_argument("--out", type=Path,
                        help="where to write (default: tests/recordings for Barman "
                        f"{DEFAULT_VERSION}, else tests/recordings/barman-<version>)")
    parser.add_argument("--wait-ready", type=float, default=0.0,
                        help=f"seconds to wait for {READY_FILE} first")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("run as root: the lab's Barman users are switched to from root")
    if args.wait_ready:
        deadline = time.monotonic() + args.wait_ready
        while not READY_FILE.exists() and time.monotonic() < deadline:
            await asyncio.sleep(2)

    lab, bm, geo, path = load_lab(args.lab_dir)
    primary_t = AccountTransport("bserver", bm, path)
    passive_t = AccountTransport("geobserver", geo, path)
    primary = BarmanClient(primary_t, timeout=COMMAND_TIMEOUT)
    passive = BarmanClient(passive_t, timeout=COMMAND_TIMEOUT)
    server = lab.settings.server_name
    version = await primary.version()
    capabilities = Capabilities.from_version_text(version)
    out = args.out or (OUT if version == DEFAULT_VERSION else OUT / f"barman-{version}")
    rec = Recorder(version, set(args.only) if args.only else None, out)
    print(f"recording Barman {version} into {out}", flush=True)

    # --- steady state, both nodes -------------------------------------------------------------
    for prefix, node, t, client in (("primary", "bserver", primary_t, primary),
                                    ("passive", "geobserver", passive_t, passive)):
        c = client
        await record_call(rec, f"{prefix}-version", node, t, c.version)
        await record_call(rec, f"{prefix}-list-servers", node, t, c.list_servers)
        await record_call(rec, f"{prefix}-show-servers", node, t, c.show_servers)
        await record_call(rec, f"{prefix}-status", node, t, c.status)
        await record_call(rec, f"{prefix}-check", node, t, c.check)
        await record_call(rec, f"{prefix}-list-backups", node, t, c.list_backups)
        await record_call(rec, f"{prefix}-show-backup-latest", node, t,
                          lambda c=c: c.show_backup(server, "latest"))
        await record_call(rec, f"{prefix}-replication-status", node, t, c.replication_status)
        if capabilities.has(Feature.LIST_PROCESSES):
            await record_call(rec, f"{prefix}-list-processes", node, t,
                              lambda c=c: c.list_processes([server]))
        else:
            await record_argv(rec, f"{prefix}-list-processes", node, t,
                              c.argv("list-processes", server),
                              "before Barman 3.14 there is no list-processes: a usage error")
        await record_call(rec, f"{prefix}-diagnose", node, t, c.diagnose)
        await record_call(rec, f"{prefix}-check-nagios", node, t, c.check_nagios)
        await record_argv(rec, f"{prefix}-check-nagios-json", node, t,
                          c.argv("check", "--nagios", "all"),
                          "quirk: with -f json Barman prints {} before the Nagios line")
        await record_call(rec, f"{prefix}-status-unknown-server", node, t,
                          lambda c=c: c.status(["nosuch"]))
        await record_call(rec, f"{prefix}-status-known-and-unknown", node, t,
                          lambda c=c: c.status([server, "nosuch"]))
        await record_call(rec, f"{prefix}-show-backup-unknown", node, t,
                          lambda c=c: c.show_backup(server, "20000101T000000"))
        await record_argv(rec, f"{prefix}-usage-error", node, t,
                          c.argv("receive-wal", "--status", server),
                          "argparse error: usage on stderr, exit 2")

    info = await record_call(rec, "primary-sync-info", "bserver", primary_t,
                             lambda: primary.sync_info(server))
    if isinstance(info, BarmanError) or info.last_name is None or info.last_position is None:
        raise SystemExit(f"sync-info on bserver failed: {info}")
    await record_call(rec, "primary-sync-info-current", "bserver", primary_t,
                      lambda: primary.sync_info(server, info.last_name, info.last_position))
    await record_argv(rec, "primary-sync-info-json", "bserver", primary_t,
                      primary.argv("sync-info", server),
                      "quirk: with -f json Barman prints the sync-info JSON followed by {}")
    await record_call(rec, "primary-cron", "bserver", primary_t,
                      lambda: primary_t.run(primary.cron_argv(), COMMAND_TIMEOUT))
    await record_call(rec, "primary-switch-wal", "bserver", primary_t,
                      lambda: primary_t.run(primary.switch_wal_argv(server), COMMAND_TIMEOUT))
    await record_argv(rec, "primary-switch-wal-json", "bserver", primary_t,
                      primary.argv("switch-wal", "--force", "--archive", server))
    await record_argv(rec, "passive-switch-wal", "geobserver", passive_t,
                      passive.switch_wal_argv(server), "Barman crashes on a passive node (P15)")
    await record_argv(rec, "passive-switch-wal-json", "geobserver", passive_t,
                      passive.argv("switch-wal", "--force", "--archive", server))

    await record_archive_failing(rec, lab, primary, primary_t, server)
    if capabilities.has(Feature.LIST_PROCESSES):
        await record_concurrent_backup_and_syncing(
            rec, primary, passive, primary_t, passive_t, server
        )
        await record_empty_backup(rec, lab, primary, primary_t, server)
    else:
        print(f"  (Barman {version}: no list-processes, so no provoked partial shapes)")
    print(f"wrote {len(rec.written)} recordings", flush=True)
    return 0


async def backup_pids(client: BarmanClient, server: str) -> set[int]:
    procs = await client.list_processes([server])
    return {p.pid for p in procs.get(server, ()) if p.name == "backup"}


async def start_own_backup(
    transport: AccountTransport, client: BarmanClient, server: str, argv: list[str]
) -> tuple[asyncio.subprocess.Process, str]:
    """Start a backup once no other backup runs (the lab is shared), and return its id.

    Ours is the backup whose barman process holds the server's backup lock."""
    deadline = time.monotonic() + LOCK_WAIT
    while time.monotonic() < deadline:
        if await backup_pids(client, server):
            await asyncio.sleep(1)
            continue
        before = {b.backup_id for b in (await client.list_backups([server]))[server]}
        proc = await transport.start(argv)
        while proc.returncode is None and time.monotonic() < deadline:
            if proc.pid in await backup_pids(client, server):
                current = (await client.list_backups([server]))[server]
                ours = [b.backup_id for b in current if b.backup_id not in before]
                if len(ours) == 1:
                    return proc, ours[0]
            await asyncio.sleep(0.05)
        rc, out = await finish(proc, "a backup that did not start", 30)
        if "Another backup process is running" not in out:
            raise SystemExit(f"the backup did not start (exit {rc}): {out[-500:]}")
        print("  another backup is running (someone else uses the lab); retrying", flush=True)
    raise SystemExit(f"could not start a backup within {LOCK_WAIT:g} s")


async def delete_own_backup(
    rec: Recorder, name: str, node: str, transport: AccountTransport, client: BarmanClient,
    server: str, backup_id: str,
) -> None:
    """Delete a backup this script made; Barman refuses while another process works on the
    server ("Another process in running"), so retry for a while."""
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        result = await transport.run(client.delete_argv(server, backup_id), COMMAND_TIMEOUT)
        if result.returncode == 0:
            rec.save(name, node, result, f"delete of backup {backup_id} made by the recorder")
            return
        if "Another" not in result.stderr or time.monotonic() > deadline:
            rec.save(f"{name}-refused", node, result, "delete refused")
            raise SystemExit(f"could not delete {backup_id} on {node}: {result.stderr[:300]}")
        rec.save(f"{name}-locked", node, result, "delete refused while another process runs")
        await asyncio.sleep(2)


async def record_concurrent_backup_and_syncing(
    rec: Recorder, primary: BarmanClient, passive: BarmanClient,
    primary_t: AccountTransport, passive_t: AccountTransport, server: str,
) -> None:
    """Backup A runs; a second backup is refused; A is then copied to the passive node (SYNCING),
    and finally deleted on both nodes (primary first, so the passive node cannot copy it again)."""
    first, new_id = await start_own_backup(
        primary_t, primary, server, primary.backup_argv(server, immediate_checkpoint=True))
    await record_argv(rec, "primary-backup-concurrent-refused", "bserver", primary_t,
                      primary.argv("backup", server), "a second backup while one runs")
    rc, out = await finish(first, "the first backup", 300)
    if rc != 0:
        raise SystemExit(f"the backup failed (exit {rc}): {out[-500:]}")
    print(f"  took backup {new_id} on bserver", flush=True)

    await record_argv(rec, "passive-cron", "geobserver", passive_t, passive.cron_argv())
    seen_syncing = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        backups = await passive.list_backups([server])
        status = {b.backup_id: b.status for b in backups.get(server, ())}
        if status.get(new_id) == "SYNCING":
            seen_syncing = True
            assert passive_t.last is not None
            rec.save("passive-list-backups-syncing", "geobserver", passive_t.last,
                     f"backup {new_id} being copied from bserver")
            await record_call(rec, "passive-list-processes-syncing", "geobserver", passive_t,
                              lambda: passive.list_processes([server]))
            await record_call(rec, "passive-show-backup-syncing", "geobserver", passive_t,
                              lambda: passive.show_backup(server, new_id))
            break
        if status.get(new_id) == "DONE":
            break  # the copy was quicker than our poll
        if new_id not in status:
            await passive_t.run(passive.cron_argv(), COMMAND_TIMEOUT)
        await asyncio.sleep(0.05)
    if not seen_syncing:
        print("  WARNING: the passive copy finished before SYNCING could be recorded", flush=True)

    async def passive_done() -> bool:
        backups = await passive.list_backups([server])
        return any(b.backup_id == new_id and b.status == "DONE" for b in backups[server])

    await wait_until("the passive copy to finish", passive_done, 180, interval=1.0)
    await record_call(rec, "passive-list-backups-after-sync", "geobserver", passive_t,
                      lambda: passive.list_backups([server]))
    await delete_own_backup(rec, "primary-delete", "bserver", primary_t, primary, server, new_id)
    await delete_own_backup(rec, "passive-delete", "geobserver", passive_t, passive, server,
                            new_id)


async def record_archive_failing(
    rec: Recorder, lab: Lab, primary: BarmanClient, primary_t: AccountTransport, server: str
) -> None:
    """PostgreSQL's archiver failing: Barman's status then reports `failures` as
    "N (<last failed WAL> at <time>)". archive_command is set to `false` for a WAL switch and
    restored afterwards; the WAL it failed on is archived once the command works again."""
    if not rec.wanted("primary-status-archive-failing"):
        return
    lab.psql("ALTER SYSTEM SET archive_command = 'false'")
    lab.psql("SELECT pg_reload_conf()")
    try:
        lab.psql("CREATE TEMP TABLE t AS SELECT 1; SELECT pg_switch_wal()")

        def failed() -> bool:
            return int(lab.psql("SELECT failed_count FROM pg_stat_archiver").strip() or 0) > 0

        deadline = time.monotonic() + 60
        while not failed():
            if time.monotonic() > deadline:
                raise SystemExit("PostgreSQL's archiver never failed with archive_command=false")
            await asyncio.sleep(1)
        await record_call(rec, "primary-status-archive-failing", "bserver", primary_t,
                          lambda: primary.status([server]))
    finally:
        lab.psql("ALTER SYSTEM RESET archive_command")
        lab.psql("SELECT pg_reload_conf()")


async def record_empty_backup(
    rec: Recorder, lab: Lab, primary: BarmanClient, primary_t: AccountTransport, server: str
) -> None:
    """A backup waiting on a spread checkpoint shows as EMPTY (FINDINGS P9). On an idle cluster
    the checkpoint is instant, so dirty buffers are made first in a scratch database, which is
    dropped afterwards."""
    lab.psql(f"DROP DATABASE IF EXISTS {SCRATCH_DB}")
    lab.psql(f"CREATE DATABASE {SCRATCH_DB}")
    try:
        # INSERT (not CREATE TABLE AS, whose bulk-write ring writes its own pages) leaves the
        # pages dirty in shared_buffers for the checkpoint to spread out
        lab.psql("CREATE TABLE filler (g int, pad text); INSERT INTO filler SELECT g, "
                 "repeat('x', 100) FROM generate_series(1, 200000) g", dbname=SCRATCH_DB,
                 timeout=120)
        proc, bid = await start_own_backup(
            primary_t, primary, server, primary.backup_argv(server, immediate_checkpoint=False))
        try:
            backups = await record_call(rec, "primary-list-backups-empty", "bserver", primary_t,
                                        lambda: primary.list_backups([server]))
            status = {b.backup_id: b.status for b in backups[server]}
            if status.get(bid) != "EMPTY":
                raise SystemExit(f"backup {bid} is {status.get(bid)}, not EMPTY: run again")
            await record_call(rec, "primary-show-backup-empty", "bserver", primary_t,
                              lambda: primary.show_backup(server, bid))
            await record_call(rec, "primary-list-processes-backup", "bserver", primary_t,
                              lambda: primary.list_processes([server]))
            await record_call(rec, "primary-check-during-backup", "bserver", primary_t,
                              lambda: primary.check([server]))
            await record_call(rec, "primary-status-during-backup", "bserver", primary_t,
                              lambda: primary.status([server]))
        finally:
            if proc.returncode is None:
                # Ctrl-C: Barman marks the backup FAILED and releases its lock. It is blocked in
                # pg_backup_start until the spread checkpoint ends, so finish that one now.
                os.killpg(proc.pid, signal.SIGINT)
                lab.psql("CHECKPOINT", timeout=120)
                await finish(proc, "the interrupted backup", 60)
        await record_call(rec, "primary-list-backups-failed", "bserver", primary_t,
                          lambda: primary.list_backups([server]))
        await delete_own_backup(rec, "primary-delete-failed", "bserver", primary_t, primary,
                                server, bid)
    finally:
        lab.psql(f"DROP DATABASE IF EXISTS {SCRATCH_DB}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
