"""The DR lab: the reference deployment (pgserver, bserver, geobserver) on loopback addresses.

Root mode: three OS users, a private sshd per lab address, a PostgreSQL cluster of the lab's own,
and one `barman cron` loop per Barman node. /etc is never touched: host names are aliases in each
lab host's ~/.ssh/config, and `barman` reaches remote shells through the sshd's `SetEnv PATH`.
<base>/lab.json records what the lab created, so `down` removes only that, even for a half-built
lab.

Single-user mode (anyone but root): the same deployment, with every host run as the caller. A
host is then a home of its own (<base>/home/<host>, set as HOME by the lab and by that host's
sshd) rather than a user; sshd.py says how ssh between the hosts finds the right keys. `down`
stops the caller's processes whose HOME is in the lab, and nothing else of theirs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dr_console.lab import barman_nodes, console_config, cron, postgres_cluster, sshd, users, venv
from dr_console.lab.errors import LabError
from dr_console.lab.lab_status import ComponentStatus, LabStatus
from dr_console.lab.lock import locked
from dr_console.lab.proc import (
    Account,
    cmdline,
    pid_alive,
    pids_of_uid,
    pids_with_home,
    run,
    terminate,
    wait_until,
)
from dr_console.lab.settings import PASSIVE_NODE, PG_HOST, PRIMARY_NODE, LabSettings, PgCluster
from dr_console.lab.state import LabState

NODES = (PRIMARY_NODE, PASSIVE_NODE)
# Checks about the catalogue's history, not the deployment: a failed backup left by a test (or a
# cancelled job) must not stop `up` from calling the lab ready.
HISTORY_CHECKS = frozenset({"failed_backups"})
REQUIRED_TOOLS = ("/usr/sbin/sshd", "/usr/bin/ssh", "/usr/bin/ssh-keygen", "/usr/bin/rsync")
USER_TOOLS = ("/usr/sbin/useradd", "/usr/sbin/userdel")


class Lab:
    def __init__(self, settings: LabSettings | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.settings = (settings or LabSettings()).validate()
        self._log = log or (lambda message: None)
        self._t0 = time.monotonic()

    @classmethod
    def at(cls, base_dir: Path, log: Callable[[str], None] | None = None,
           default: LabSettings | None = None) -> Lab:
        """The lab recorded in BASE_DIR/lab.json (DEFAULT, or the default settings with that
        base dir, when there is none)."""
        state = LabState.load(base_dir)
        if state is not None:
            return cls(state.settings, log)
        return cls(dataclasses.replace(default or LabSettings(), base_dir=base_dir), log)

    # --- paths and accounts ------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.settings.config_path

    @property
    def console_key(self) -> Path:
        return sshd.console_key(self.settings)

    @property
    def console_known_hosts(self) -> Path:
        return sshd.console_known_hosts(self.settings)

    @property
    def pg_data(self) -> Path:
        return self.settings.pg_data

    def node_home(self, node: str) -> Path:
        return self.settings.host_home(self._host_of(node))

    def barman_home(self, node: str) -> Path:
        return self.node_home(node) / "barman_home"

    @property
    def venv_bin(self) -> Path:
        state = LabState.load(self.settings.base_dir)
        return Path(state.venv if state and state.venv else sys.prefix) / "bin"

    def _host_of(self, who: str) -> str:
        """WHO is a lab host, or (root mode) the user of one."""
        s = self.settings
        if who in s.host_users:
            return who
        if not s.single_user:
            for host, user in s.host_users.items():
                if user == who:
                    return host
        raise LabError(f"{who!r} is not a lab host ({', '.join(s.host_users)})"
                       + ("" if s.single_user else " nor a lab user"))

    def account(self, who: str) -> Account:
        """How the lab runs commands on host WHO (or, in root mode, as lab user WHO)."""
        host = self._host_of(who)
        return host_account(self.settings, host, self.settings.host_users[host])

    # --- helpers for tests and tools -----------------------------------------------------------

    def run_as(self, who: str, argv: list[str], timeout: float = 60, check: bool = False,
               input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        return run(argv, timeout=timeout, account=self.account(who), check=check,
                   input_text=input_text, path=sshd.remote_path(self.venv_bin))

    def barman(self, node: str, *args: str, json: bool = True,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return barman_nodes.barman(self.account(node), self.venv_bin, list(args),
                                   json_format=json, timeout=timeout)

    def barman_json(self, node: str, *args: str, timeout: float = 120) -> Any:
        return barman_nodes.barman_json(self.account(node), self.venv_bin, list(args), timeout)

    def psql(self, sql: str, dbname: str = "postgres", timeout: float = 60,
             server: str | None = None) -> str:
        """SQL on the cluster of lab server SERVER (default: pgserver's)."""
        return postgres_cluster.psql(self.settings, self.account(PG_HOST), sql, dbname, timeout,
                                     self._cluster(server))

    def pg_stop(self, server: str | None = None) -> None:
        postgres_cluster.stop(self.settings, self.account(PG_HOST), self._cluster(server))

    def pg_start(self, server: str | None = None) -> None:
        pg, cluster = self.account(PG_HOST), self._cluster(server)
        if not postgres_cluster.is_running(self.settings, pg, cluster):
            postgres_cluster.start(self.settings, pg, self.venv_bin, cluster)

    def _cluster(self, server: str | None) -> PgCluster:
        return self.settings.cluster_of(server or self.settings.server_name)

    def pause_cron(self, node: str, timeout: float = 60) -> None:
        """Stop NODE's loop from starting `barman cron`, and wait for a run in flight to end,
        with the short workers it started (archive-wal, sync-wals, sync-backup) that would still
        change the node's catalogue; receive-wal keeps running."""
        account = self.account(node)
        cron.pause(self.settings, node)
        wait_until(f"the cron run of {node} to finish",
                   lambda: not _cron_runs_of(account), timeout=timeout)

    @contextlib.contextmanager
    def cron_paused(self, node: str) -> Iterator[None]:
        """`with lab.cron_paused("geobserver"): …` resumes the loop even when the body fails."""
        self.pause_cron(node)
        try:
            yield
        finally:
            self.resume_cron(node)

    def resume_cron(self, node: str) -> None:
        self._host_of(node)
        cron.resume(self.settings, node)

    def sshd_stop(self) -> None:
        sshd.stop(self.settings)

    def sshd_start(self) -> None:
        sshd.start(self.settings, self.venv_bin)

    def sshd_stop_node(self, node: str) -> None:
        """Stop the sshd of one lab host (pgserver, bserver or geobserver) and its sessions;
        the other two keep serving."""
        sshd.stop(self.settings, self._address_of(node))

    def sshd_start_node(self, node: str) -> None:
        sshd.start(self.settings, self.venv_bin, self._address_of(node))

    def _address_of(self, node: str) -> str:
        if node not in self.settings.host_addresses:
            hosts = ", ".join(self.settings.host_addresses)
            raise LabError(f"{node!r} is not a lab host ({hosts})")
        return self.settings.host_addresses[node]

    # --- up ------------------------------------------------------------------------------------

    def up(self) -> Path:
        """Build what is missing, start what is down, end with a checked backup on both nodes."""
        require_mode(self.settings, "lab up")
        if self.settings.single_user:
            _require_login_shell(self.settings.barman_user)
        self._t0 = time.monotonic()
        with locked(self.settings.base_dir, create=True):
            self._waited_for_lock()
            return self._up()

    def _up(self) -> Path:
        tools = REQUIRED_TOOLS if self.settings.single_user else REQUIRED_TOOLS + USER_TOOLS
        missing = [t for t in tools if not Path(t).exists()]
        missing += [str(self.settings.pg_bindir / b) for b in ("initdb", "pg_ctl", "postgres")
                    if not (self.settings.pg_bindir / b).exists()]
        if missing:
            raise LabError("missing programs: " + ", ".join(missing)
                           + " (install openssh-server, rsync and postgresql-15; see README)")
        s = self.settings
        state = self._load_or_create_state()
        accounts = self._ensure_accounts(state)
        pg, bm, geo = (accounts[h] for h in (PG_HOST, PRIMARY_NODE, PASSIVE_NODE))
        self._step("barman venv")
        if state.venv is None or not venv.usable_by(Path(state.venv), [bm], s.barman_version):
            path, created = venv.ensure(s, [pg, bm, geo])
            state.venv, state.created_venv = str(path), created
            state.save()
        venv_bin = Path(state.venv) / "bin"
        self._ensure_ssh(state, pg, bm, geo, venv_bin)
        self._ensure_postgres(pg, bm, geo, venv_bin)
        self._step("cron loops")
        cron.start(s, PRIMARY_NODE, bm, venv_bin)
        backup_ids = {server: self._ensure_primary(bm, venv_bin, server)
                      for server in s.server_names}
        # Only now: a passive node whose first WAL sync finds one line in the primary's xlog.db
        # records position 0, and Barman refuses every later sync-info (collector._sync_blocked).
        cron.start(s, PASSIVE_NODE, geo, venv_bin)
        self._ensure_passive(geo, venv_bin, backup_ids)
        path = console_config.write(s)
        self._log(f"lab up in {time.monotonic() - self._t0:.1f} s; config: {path}")
        return path

    def _waited_for_lock(self) -> None:
        waited = time.monotonic() - self._t0
        if waited > 1:
            self._log(f"(waited {waited:.1f} s for another lab operation on this lab)")
        self._t0 = time.monotonic()

    def _step(self, what: str) -> None:
        self._log(f"[{time.monotonic() - self._t0:5.1f} s] {what}")

    def _load_or_create_state(self) -> LabState:
        s = self.settings
        state = LabState.load(s.base_dir)
        if state is None:
            if any(s.base_dir.iterdir()):
                raise LabError(f"{s.base_dir} exists and is not a lab (no lab.json); "
                               "choose another --base-dir")
            s.base_dir.mkdir(parents=True, exist_ok=True)
            # Lab users must enter it; a single-user lab is nobody else's business.
            s.base_dir.chmod(0o700 if s.single_user else 0o755)
            state = LabState(settings=s)
            state.save()
        elif state.settings != s:
            if dataclasses.replace(state.settings, barman_version=s.barman_version) == s:
                raise LabError(
                    f"the lab at {s.base_dir} runs Barman {state.settings.barman_version}, "
                    f"not {s.barman_version}: Barman's files are laid out differently across "
                    f"versions, so bring it down first (drconsole lab down --base-dir "
                    f"{s.base_dir}) and build it again with --barman-version "
                    f"{s.barman_version}")
            raise LabError(f"the lab at {s.base_dir} was built with other settings; bring it "
                           f"down first (drconsole lab down --base-dir {s.base_dir})")
        return state

    def _ensure_accounts(self, state: LabState) -> dict[str, Account]:
        """Each host's account by host name (creating the lab users in root mode)."""
        s = self.settings
        self._step("users" if not s.single_user else "host homes (single-user mode)")
        s.home_root.mkdir(parents=True, exist_ok=True)
        s.home_root.chmod(0o755)
        if s.single_user:
            hosts = {host: host_account(s, host, user) for host, user in s.host_users.items()}
            for host_acct in hosts.values():
                host_acct.home.mkdir(mode=0o700, exist_ok=True)
            return hosts
        accounts: dict[str, Account] = {}
        for name in s.users:
            account = users.lookup(name)
            if account is None:
                account = users.create(name, s.home_of(name))
                state.created_users.append(name)
                state.save()
            elif name not in state.created_users:
                raise LabError(f"user {name} already exists and was not created by this lab; "
                               "remove it or use --user-prefix")
            if account.home != s.home_of(name):
                raise LabError(f"user {name} has home {account.home}, expected {s.home_of(name)}")
            accounts[name] = account
        return {host: accounts[user] for host, user in s.host_users.items()}

    def _ensure_ssh(self, state: LabState, pg: Account, bm: Account, geo: Account,
                    venv_bin: Path) -> None:
        s = self.settings
        self._step("ssh keys, client configs and the private sshd")
        if s.single_user:
            sshd.write_ssh_wrapper(s)
        elif not sshd.PRIVSEP_DIR.exists():
            sshd.PRIVSEP_DIR.mkdir(mode=0o755)
            state.created_run_sshd = True
            state.save()
        pg_pub, bm_pub, geo_pub = (sshd.ensure_user_key(a) for a in (pg, bm, geo))
        console_pub = sshd.write_console_files(s)
        sshd.write_client_files(s, pg, [bm_pub, geo_pub, console_pub])
        sshd.write_client_files(s, bm, [pg_pub, geo_pub, console_pub])
        sshd.write_client_files(s, geo, [console_pub])
        sshd.start(s, venv_bin)
        # Prove what Barman relies on: key auth, pinned host key, bare `barman` on the PATH.
        expected = str(venv_bin / "barman")
        probes = ((pg, f"{bm.name}@{PRIMARY_NODE}"), (geo, f"{bm.name}@{PRIMARY_NODE}"),
                  (bm, f"{pg.name}@{PG_HOST}"))
        with ThreadPoolExecutor(len(probes)) as pool:
            results = list(pool.map(
                lambda probe: run(["ssh", probe[1], "command -v barman"], timeout=30,
                                  account=probe[0], check=False), probes))
        for (account, target), cp in zip(probes, results, strict=True):
            if cp.returncode != 0:
                raise LabError(f"ssh {target} as {account.name} fails: {cp.stderr.strip()} "
                               f"(see {s.sshd_dir / 'sshd.log'})")
            if cp.stdout.strip() != expected:
                raise LabError(f"remote shells of the lab sshd do not find {expected} as "
                               f"`barman` (got {cp.stdout.strip()!r})")

    def _ensure_postgres(self, pg: Account, bm: Account, geo: Account, venv_bin: Path) -> None:
        s = self.settings
        self._step("PostgreSQL cluster and roles")
        pc = postgres_cluster
        bm_password = (pc.read_pgpass_password(bm.home / ".pgpass", s, s.barman_role)
                       or pc.new_password())
        console_pgpass = console_config.pgpass_path(s)
        mon_password = (pc.read_pgpass_password(console_pgpass, s, s.monitor_role)
                        or pc.new_password())
        pgpass = pc.pgpass_line(s, s.barman_role, bm_password)
        barman_nodes.write_node(bm, barman_nodes.primary_confs(s), pgpass)
        barman_nodes.write_node(geo, barman_nodes.passive_confs(s), pgpass)
        console_pgpass.write_text(pc.pgpass_line(s, s.monitor_role, mon_password),
                                  encoding="utf-8")
        console_pgpass.chmod(0o600)
        for cluster in s.clusters:
            changed = pc.ensure_cluster(s, pg, venv_bin, cluster)
            if pc.is_running(s, pg, cluster):
                if changed:
                    pc.restart(s, pg, venv_bin, cluster)
            else:
                if _port_taken(s.pg_address, cluster.port):
                    raise LabError(f"{s.pg_address}:{cluster.port} is taken (the port of "
                                   f"{cluster.server}'s cluster); choose another --pg-port "
                                   "(the lab uses it and the next one)")
                pc.start(s, pg, venv_bin, cluster)
            pc.ensure_role(s, pg, s.barman_role, bm_password, "SUPERUSER REPLICATION",
                           cluster=cluster)
            pc.ensure_role(s, pg, s.monitor_role, mon_password, "", ("pg_monitor",),
                           cluster=cluster)

    def _ensure_primary(self, bm: Account, venv_bin: Path, server: str) -> str:
        done = barman_nodes.done_backup_ids(bm, venv_bin, server)
        if done:
            self._step(f"bserver: barman check {server}")
            failed = barman_nodes.failed_checks(bm, venv_bin, server, HISTORY_CHECKS)
        else:
            failed = ["no backup yet"]  # a new lab: its check cannot pass before cron (P8)
        if failed:
            self._step(f"bserver: {server} needs cron and a WAL switch: " + "; ".join(failed))
            # Before the first cron there is no slot and no receive-wal: cron creates both.
            barman_nodes.barman(bm, venv_bin, ["-q", "cron"], json_format=False, timeout=120)
            self._step(f"bserver: switch-wal --force --archive {server}")
            barman_nodes.barman(bm, venv_bin, ["switch-wal", "--force", "--archive",
                                               "--archive-timeout", "60", server],
                                json_format=False, timeout=120)
            deadline = time.monotonic() + 120
            while failed:
                if time.monotonic() > deadline:
                    raise LabError(f"bserver: barman check {server} still fails after "
                                   "120 s: " + "; ".join(failed))
                time.sleep(2)
                barman_nodes.barman(bm, venv_bin, ["-q", "cron"], json_format=False)
                failed = barman_nodes.failed_checks(bm, venv_bin, server, HISTORY_CHECKS)
        if not done:
            self._step(f"bserver: first backup of {server}")
            cp = barman_nodes.barman(bm, venv_bin, ["backup", "--wait", server],
                                     json_format=False, timeout=600)
            done = barman_nodes.done_backup_ids(bm, venv_bin, server)
            if cp.returncode != 0 or not done:
                raise LabError(f"bserver: barman backup {server} failed (exit {cp.returncode}): "
                               f"{(cp.stderr or cp.stdout).strip()[-400:]}")
            # A second WAL after the backup's: the passive node's first sync then ends past
            # the first line of xlog.db (position 0 is refused by Barman's sync-info).
            self._step(f"bserver: switch-wal --force --archive {server} after its first backup")
            barman_nodes.barman(bm, venv_bin, ["switch-wal", "--force", "--archive",
                                               "--archive-timeout", "60", server],
                                json_format=False, timeout=120)
        return done[0]

    def _ensure_passive(self, geo: Account, venv_bin: Path, backup_ids: dict[str, str]) -> None:
        """Wait until geobserver holds each server's backup (BACKUP_IDS) and its check passes."""
        self._step("geobserver: copies of backups "
                   + ", ".join(f"{server} {bid}" for server, bid in backup_ids.items())
                   + " and check")
        deadline = time.monotonic() + 240
        while True:
            failing: list[str] = []
            for server, backup_id in backup_ids.items():
                have = backup_id in barman_nodes.done_backup_ids(geo, venv_bin, server)
                failed = (barman_nodes.failed_checks(geo, venv_bin, server, HISTORY_CHECKS)
                          if have else [f"backup {backup_id} not copied"])
                failing += [f"{server}: {item}" for item in failed]
            if not failing:
                return
            if time.monotonic() > deadline:
                raise LabError("geobserver: not ready after 240 s (failing: "
                               + "; ".join(failing) + ")")
            # One passive cron copies at most one backup and syncs WALs on a later run (P14).
            barman_nodes.barman(geo, venv_bin, ["-q", "cron"], json_format=False)
            time.sleep(2)

    # --- down ----------------------------------------------------------------------------------

    def down(self) -> None:
        """Stop what the lab started and remove what it created; tolerant of a half-built lab."""
        require_mode(self.settings, "lab down")
        self._t0 = time.monotonic()
        with locked(self.settings.base_dir, create=False):
            self._waited_for_lock()
            self._down()
        self._log(f"lab down in {time.monotonic() - self._t0:.1f} s")

    def _down(self) -> None:
        s = self.settings
        state = LabState.load(s.base_dir)
        if state is None:
            if s.base_dir.exists():
                raise LabError(f"{s.base_dir} has no lab.json: not removing a directory the lab "
                               "did not record")
            self._log(f"no lab at {s.base_dir}")
            return
        s = state.settings
        problems: list[str] = []

        def attempt(what: str, action: Callable[[], None]) -> None:
            self._step(what)
            try:
                action()
            except LabError as exc:
                problems.append(f"{what}: {exc}")

        for node in NODES:
            attempt(f"stop cron loop {node}", functools.partial(cron.stop, s, node))
        # receive-wal and other Barman workers get SIGTERM with the rest of the lab users'
        # processes below; `barman receive-wal --stop` would only add a Barman start-up.
        pg = host_account(s, PG_HOST, s.pg_user) if users.lookup(s.pg_user) else None
        for cluster in s.clusters:
            if pg and (cluster.data / "PG_VERSION").exists():
                attempt(f"stop PostgreSQL ({cluster.server})",
                        functools.partial(postgres_cluster.stop, s, pg, cluster))
        attempt("stop sshd", lambda: sshd.stop(s))
        if s.single_user:
            # The caller's own processes that the lab started (all have HOME in the lab).
            me = users.lookup(s.barman_user)
            left = terminate(pids_with_home(me.uid, s.home_root), grace=10) if me else []
            if left:
                problems.append(f"lab processes survive SIGKILL: {left}")
        for name in state.created_users:
            account = users.lookup(name)
            if account is None:
                continue
            left = terminate(pids_of_uid(account.uid), grace=10)
            if left:
                problems.append(f"processes of {name} survive SIGKILL: {left}")
                continue
            attempt(f"remove user {name}", functools.partial(users.delete, name))
        if state.created_run_sshd and sshd.PRIVSEP_DIR.exists() and not _other_sshd_running():
            try:
                sshd.PRIVSEP_DIR.rmdir()
            except OSError as exc:
                problems.append(f"remove {sshd.PRIVSEP_DIR}: {exc}")
        remaining = [n for n in state.created_users if users.lookup(n) is not None]
        if s.single_user and problems:
            problems.append(f"keeping {s.base_dir}: lab processes may still use it")
        elif remaining:
            problems.append(f"keeping {s.base_dir}: users {', '.join(remaining)} still exist")
        else:
            self._step(f"remove {s.base_dir}")
            shutil.rmtree(s.base_dir, ignore_errors=True)
            if s.base_dir.exists():
                problems.append(f"{s.base_dir} could not be removed completely")
        if problems:
            raise LabError("lab down incomplete:\n  " + "\n  ".join(problems))

    # --- status --------------------------------------------------------------------------------

    def status(self, with_backups: bool = True) -> LabStatus:
        """Component by component. Backup counts run barman as the lab's users, which only root
        (or, for a single-user lab, its user) can, so another caller gets the rest."""
        s = self.settings
        state = LabState.load(s.base_dir)
        if state is None:
            return LabStatus(base_dir=s.base_dir, present=False, components=())
        s = state.settings
        venv_bin = Path(state.venv or sys.prefix) / "bin"
        comps: list[ComponentStatus] = []
        missing = sorted({n for n in s.users if users.lookup(n) is None})
        accounts = {host: None if user in missing else host_account(s, host, user)
                    for host, user in s.host_users.items()}
        names = (f"{s.barman_user} (single-user mode)" if s.single_user
                 else ", ".join(s.users))
        comps.append(ComponentStatus("users", not missing,
                                     "missing: " + ", ".join(missing) if missing else names))
        with_backups = with_backups and (os.geteuid() == 0 or mode_error(s, "") is None)
        pid = sshd.running_pid(s)
        comps.append(ComponentStatus("sshd", pid is not None,
                                     f"pid {pid}, port {s.ssh_port}" if pid else "not running"))
        for cluster in s.clusters:
            pg_up = postgres_cluster.accepting(s, cluster)
            name = "postgres" if cluster.archives else f"postgres-{cluster.server}"
            comps.append(ComponentStatus(name, pg_up, f"{s.pg_address}:{cluster.port}"
                                         if pg_up else "not accepting"))
        for node in NODES:
            cpid = cron.running_pid(s, node)
            paused = cron.pause_file(s, node).exists()
            detail = f"pid {cpid}, every {s.cron_interval:g} s" if cpid else "not running"
            comps.append(ComponentStatus(f"cron-{node}", cpid is not None,
                                         detail + (" (paused)" if paused else "")))
        bm = accounts[PRIMARY_NODE]
        receivers = [p for p in pids_with_home(bm.uid, bm.home)
                     if any(a.endswith("pg_receivewal") for a in cmdline(p)[:1])] if bm else []
        wanted = len(s.server_names)
        comps.append(ComponentStatus(
            "receive-wal", len(receivers) >= wanted,
            (f"{len(receivers)} of {wanted} running (pid {', '.join(map(str, receivers))})"
             if receivers else "not running")))
        if with_backups:
            for node, account in ((PRIMARY_NODE, bm), (PASSIVE_NODE, accounts[PASSIVE_NODE])):
                counts: dict[str, int | None] = dict.fromkeys(s.server_names)
                if account is not None and (account.home / ".barman.conf").exists():
                    for server in s.server_names:
                        try:
                            counts[server] = len(barman_nodes.done_backup_ids(
                                account, venv_bin, server))
                        except LabError:
                            counts[server] = None
                comps.append(ComponentStatus(
                    f"backups-{node}", all(counts.values()),
                    ", ".join(f"{server} " + ("unknown" if count is None else f"{count} DONE")
                              for server, count in counts.items())))
        comps.append(ComponentStatus("config", s.config_path.exists(), str(s.config_path)))
        return LabStatus(base_dir=s.base_dir, present=True, components=tuple(comps))


def host_account(settings: LabSettings, host: str, user: str) -> Account:
    """The account commands for HOST run as: USER, with HOST's home as HOME."""
    account = users.lookup(user)
    if account is None:
        raise LabError(f"lab user {user} does not exist: is the lab up?")
    return dataclasses.replace(account, home=settings.host_home(host),
                               path_prefix=settings.path_prefix())


def _require_login_shell(user: str) -> None:
    """sshd runs the hosts' remote commands (barman put-wal, rsync --server) through the
    user's login shell, so a single-user lab needs one that runs commands."""
    try:
        shell = pwd.getpwnam(user).pw_shell
    except KeyError as exc:
        raise LabError(f"user {user} does not exist") from exc
    if Path(shell).name in ("nologin", "false") or not os.access(shell, os.X_OK):
        raise LabError(f"single-user mode: the login shell of {user} ({shell or 'none'}) cannot "
                       "run the commands the lab's hosts send each other over ssh; use an "
                       "account with a shell such as /bin/bash")


def mode_error(settings: LabSettings, what: str) -> str | None:
    """Why this process may not build or remove the lab SETTINGS describe (None if it may)."""
    euid = os.geteuid()
    if not settings.single_user:
        if euid == 0:
            return None
        return (f"{what} needs root for this lab: it creates three OS users and runs a private "
                "sshd for them; run it with sudo (without sudo, `drconsole lab up` builds a "
                "single-user lab of your own)")
    owner = users.lookup(settings.barman_user)
    if owner is not None and owner.uid == euid:
        return None
    return (f"{what}: {settings.base_dir} is the single-user lab of {settings.barman_user}; "
            f"run it as {settings.barman_user}")


def require_mode(settings: LabSettings, what: str) -> None:
    problem = mode_error(settings, what)
    if problem is not None:
        raise LabError(problem)


# What a cron run does in the background that still changes the catalogue (not receive-wal).
CRON_WORK = frozenset({"cron", "archive-wal", "sync-wals", "sync-backup"})


def _cron_runs_of(account: Account) -> list[int]:
    """Pids of ACCOUNT's `barman … cron` commands and the short workers such a run starts."""
    runs = []
    for pid in pids_with_home(account.uid, account.home):
        args = cmdline(pid)
        if any(a.endswith("/barman") for a in args[:2]) and CRON_WORK & set(args[2:]):
            runs.append(pid)
    return runs


def _other_sshd_running() -> bool:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                exe = os.readlink(f"/proc/{entry.name}/exe")
            except OSError:
                continue
            if exe.endswith("/sshd") and pid_alive(int(entry.name)):
                return True
    return False


def _port_taken(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1.0):
            return True
    except OSError:
        return False
