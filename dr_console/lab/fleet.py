"""A fleet on a lab: N Barman servers on bserver and N passive copies on geobserver.

Server 1 is the lab's own `pgserver` (archiver and streaming). Servers 2..N (`fleet02`…) are
further Barman servers over the same PostgreSQL cluster, which Barman accepts honestly: each has
its own replication slot and `streaming_archiver_name` (WAL arrives by streaming only, archiver
off, since archive_command can feed one server), its own rsync backup, and a passive copy on
geobserver that `barman cron` there fills. PostgreSQL gets enough WAL senders and slots for them
(ALTER SYSTEM, i.e. postgresql.auto.conf; no archive_command there, FINDINGS P10).

`down` removes the extra servers (configs, receive-wal, slots, directories) and leaves the lab
as `drconsole lab up` built it.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dr_console.lab import barman_nodes
from dr_console.lab.errors import LabError
from dr_console.lab.lab import Lab
from dr_console.lab.proc import Account, cmdline, pids_with_home, terminate
from dr_console.lab.settings import PASSIVE_NODE, PG_HOST, PRIMARY_NODE, LabSettings
from dr_console.lab.users import write_owned

PREFIX = "fleet"
MAX_SERVERS = 60
_EXTRA = re.compile(rf"^{PREFIX}\d\d$")
BACKUP_BATCH = 3  # concurrent `barman backup` processes (2 cores)


def server_names(settings: LabSettings, count: int) -> list[str]:
    if not 1 <= count <= MAX_SERVERS:
        raise LabError(f"--servers must be 1..{MAX_SERVERS}")
    return [settings.server_name] + [f"{PREFIX}{i:02d}" for i in range(2, count + 1)]


def _conninfo(settings: LabSettings) -> str:
    return (
        f"host={settings.pg_address} port={settings.pg_port} "
        f"user={settings.barman_role} dbname=postgres"
    )


def primary_conf(settings: LabSettings, name: str) -> str:
    return (
        f"[{name}]\n"
        f'description = "fleet server {name} over the lab cluster (streaming only)"\n'
        f"conninfo = {_conninfo(settings)}\n"
        f"ssh_command = ssh {settings.pg_user}@{PG_HOST}\n"
        "backup_method = rsync\n"
        "reuse_backup = link\n"
        "backup_options = concurrent_backup\n"
        "archiver = off\n"
        "streaming_archiver = on\n"
        f"streaming_conninfo = {_conninfo(settings)}\n"
        f"streaming_archiver_name = barman_receive_wal_{name}\n"
        f"slot_name = {name}\n"
        "create_slot = auto\n"
        f"path_prefix = {settings.pg_bindir}\n"
        "immediate_checkpoint = true\n"
    )


def passive_conf(settings: LabSettings, name: str) -> str:
    return barman_nodes.passive_server_conf(settings, name)


def _conf_path(account: Account, name: str) -> Path:
    return account.home / "barman.d" / f"{name}.conf"


def _extra_confs(account: Account) -> list[str]:
    folder = account.home / "barman.d"
    return sorted(p.stem for p in folder.glob(f"{PREFIX}*.conf") if _EXTRA.match(p.stem))


class Fleet:
    def __init__(self, lab: Lab, log: Callable[[str], None] | None = None) -> None:
        self.lab = lab
        self.settings = lab.settings
        self._log = log or (lambda message: None)
        self._t0 = time.monotonic()

    def _step(self, what: str) -> None:
        self._log(f"[{time.monotonic() - self._t0:5.1f} s] fleet: {what}")

    def _json(self, node: str, *args: str, timeout: float = 300) -> Any:
        return self.lab.barman_json(node, *args, timeout=timeout)

    def done_ids(self, node: str, names: list[str]) -> dict[str, list[str]]:
        data = self._json(node, "list-backups", *names)
        out: dict[str, list[str]] = {}
        for name in names:
            items = data.get(name) if isinstance(data, dict) else None
            out[name] = [
                str(b["backup_id"])
                for b in (items if isinstance(items, list) else [])
                if isinstance(b, dict) and b.get("status") == "DONE"
            ]
        return out

    # --- up ------------------------------------------------------------------------------------

    def up(self, count: int) -> list[str]:
        """Configure COUNT servers (the lab must be up); idempotent. Returns the server names."""
        self._t0 = time.monotonic()
        names = server_names(self.settings, count)
        extras = names[1:]
        bm, geo = self.lab.account(PRIMARY_NODE), self.lab.account(PASSIVE_NODE)
        self._ensure_postgres_limits(count)
        if not extras:
            return names
        self._step(f"configs for {len(extras)} extra servers on both nodes")
        for name in extras:
            write_owned(_conf_path(bm, name), primary_conf(self.settings, name), bm, 0o600)
            write_owned(_conf_path(geo, name), passive_conf(self.settings, name), geo, 0o600)
        self._ensure_streaming(extras)
        self._ensure_backups(extras)
        self._ensure_passive(extras)
        self._step(f"{count} servers ready")
        return names

    def _ensure_postgres_limits(self, count: int) -> None:
        wanted = {"max_wal_senders": 2 * count + 10, "max_replication_slots": 2 * count + 10,
                  "max_connections": 3 * count + 60}
        current = {
            key: int(self.lab.psql(f"SHOW {key};").strip() or 0) for key in wanted
        }
        if all(current[k] >= v for k, v in wanted.items()):
            return
        self._step("raise " + ", ".join(f"{k}={v}" for k, v in wanted.items())
                   + " and restart PostgreSQL")
        self.lab.psql("\n".join(f"ALTER SYSTEM SET {k} = {v};" for k, v in wanted.items()))
        self.lab.pg_stop()
        self.lab.pg_start()

    def _ensure_streaming(self, extras: list[str]) -> None:
        """cron creates the slots and starts receive-wal (FINDINGS P8); a WAL switch then
        lets every server's check pass."""
        self._step("barman cron (slots, receive-wal) and a WAL switch")
        deadline = time.monotonic() + 180
        while True:
            self.lab.barman(PRIMARY_NODE, "-q", "cron", json=False, timeout=300)
            checks = self._json(PRIMARY_NODE, "check", *extras)
            failing = sorted(
                f"{name}:{check}"
                for name in extras
                for check, item in (checks.get(name) or {}).items()
                if check != "failed_backups"
                and check not in ("backup maximum age", "minimum redundancy requirements")
                and isinstance(item, dict) and item.get("status") != "OK"
                and check not in ("wal_archive",)
            )
            if not failing:
                return
            if time.monotonic() > deadline:
                raise LabError("fleet: checks still failing after 180 s: " + ", ".join(failing))
            self.lab.barman(PRIMARY_NODE, "switch-wal", "--force", self.settings.server_name,
                            json=False, timeout=120)
            time.sleep(3)

    def _ensure_backups(self, extras: list[str]) -> None:
        done = self.done_ids(PRIMARY_NODE, extras)
        todo = [n for n in extras if not done[n]]
        self._step(f"backups of {len(todo)} servers ({BACKUP_BATCH} at a time)")
        for start in range(0, len(todo), BACKUP_BATCH):
            batch = todo[start:start + BACKUP_BATCH]
            procs = [self._spawn_backup(name) for name in batch]
            for name, wait in zip(batch, procs, strict=True):
                if wait() != 0:
                    raise LabError(f"fleet: barman backup {name} failed; see the barman.log of "
                                   f"{self.settings.barman_user}")
            self._step(f"  {min(start + BACKUP_BATCH, len(todo))}/{len(todo)} copied")
        deadline = time.monotonic() + 240
        while todo:
            # streaming-only servers close a backup once its last WAL is streamed and archived
            self.lab.barman(PRIMARY_NODE, "switch-wal", "--force", self.settings.server_name,
                            json=False, timeout=120)
            self.lab.barman(PRIMARY_NODE, "-q", "cron", json=False, timeout=300)
            time.sleep(3)
            done = self.done_ids(PRIMARY_NODE, todo)
            todo = [n for n in todo if not done[n]]
            if todo and time.monotonic() > deadline:
                raise LabError("fleet: backups not DONE after 240 s: " + ", ".join(todo))

    def _spawn_backup(self, name: str) -> Callable[[], int]:
        import subprocess

        account = self.lab.account(PRIMARY_NODE)
        venv_bin = self.lab.venv_bin
        proc = subprocess.Popen(
            [str(venv_bin / "barman"), "-q", "backup", name],
            user=account.uid, group=account.gid, extra_groups=[],
            env=account.environment(f"{venv_bin}:/usr/local/bin:/usr/bin:/bin"),
            cwd=str(account.home), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def wait() -> int:
            try:
                return proc.wait(timeout=600)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
                return -9

        return wait

    def _ensure_passive(self, extras: list[str]) -> None:
        primary = self.done_ids(PRIMARY_NODE, extras)
        self._step("geobserver: cron until every backup is copied")
        deadline = time.monotonic() + 600
        while True:
            have = self.done_ids(PASSIVE_NODE, extras)
            missing = [n for n in extras if not set(primary[n]) <= set(have[n])]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise LabError("fleet: passive copies missing after 600 s: " + ", ".join(missing))
            self.lab.barman(PASSIVE_NODE, "-q", "cron", json=False, timeout=300)
            time.sleep(5)

    # --- down ----------------------------------------------------------------------------------

    def down(self) -> None:
        """Remove every extra server; the lab's own server and PostgreSQL settings stay."""
        self._t0 = time.monotonic()
        for node in (PRIMARY_NODE, PASSIVE_NODE):
            account = self.lab.account(node)
            names = _extra_confs(account)
            if not names:
                continue
            self._step(f"{node}: remove {len(names)} servers")
            for name in names:
                _conf_path(account, name).unlink(missing_ok=True)
            # receive-wal / pg_receivewal / sync workers of removed servers
            victims = [p for p in pids_with_home(account.uid, account.home)
                       if any(a in names or a.startswith(tuple(f"--slot={n}" for n in names))
                              for a in cmdline(p))
                       or any(f"_receive_wal_{n}" in " ".join(cmdline(p)) for n in names)]
            terminate(victims, grace=10)
            for name in names:
                shutil.rmtree(barman_nodes.barman_home(account) / name, ignore_errors=True)
                for lock in barman_nodes.barman_home(account).glob(f".{name}-*.lock"):
                    lock.unlink(missing_ok=True)
        slots = [s for s in self.lab.psql(
            "SELECT slot_name FROM pg_replication_slots WHERE NOT active;").split()
            if _EXTRA.match(s)]
        for slot in slots:
            self.lab.psql(f"SELECT pg_drop_replication_slot('{slot}');")
        self._step("down")


def status(lab: Lab) -> dict[str, Any]:
    bm = lab.account(PRIMARY_NODE)
    return {"servers": [*lab.settings.server_names, *_extra_confs(bm)]}


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2)
