"""A console whose two nodes are this machine (LocalTransport), with a real JobManager and the
real Barman of the venv, run with a minimal config of its own: one server, pgserver, with no
PostgreSQL behind it (`cron` succeeds, a backup of pgserver starts and ends FAILED with Barman's
own "Impossible to start the backup" error)."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from dr_console.config import Config, ConsoleConfig, NodeConfig
from dr_console.core.jobs import JobManager
from dr_console.core.journal import Journal
from dr_console.core.transport_local import LocalTransport
from dr_console.models import FleetSnapshot, NodeRole
from dr_console.tui.app import DrConsoleApp
from dr_console.tui.launch import make_app
from tests.tui.fleet_fixture import fleet
from tests.tui.helpers import frozen
from tests.tui.replay import ReplayCollector

BARMAN = str(Path(sys.executable).with_name("barman"))
NODES = ("bserver", "geobserver")


def barman_config(tmp: Path) -> Path:
    home = tmp / "barman_home"
    home.mkdir(parents=True, exist_ok=True)
    conf = tmp / "barman.conf"
    conf.write_text(
        "[barman]\n"
        f"barman_user = {getpass.getuser()}\n"
        f"barman_home = {home}\n"
        f"log_file = {tmp / 'barman.log'}\n"
        f"configuration_files_directory = {tmp / 'barman.d'}\n",
        encoding="utf-8",
    )
    (tmp / "barman.d").mkdir(exist_ok=True)
    nowhere = "host=127.0.0.1 port=9 user=nobody dbname=postgres connect_timeout=2"
    (tmp / "barman.d" / "pgserver.conf").write_text(
        "[pgserver]\n"
        'description = "drconsole TUI tests: no PostgreSQL behind it"\n'
        f"conninfo = {nowhere}\nstreaming_conninfo = {nowhere}\n"
        "backup_method = postgres\narchiver = off\nstreaming_archiver = on\n"
        "slot_name = barman\n",
        encoding="utf-8",
    )
    return conf


def ops_config(tmp: Path, *, plain_barman: bool = False) -> Config:
    """plain_barman: `barman` with no -c (for snapshots, whose argv must not name tmp paths)."""
    conf: str | None = str(barman_config(tmp))
    barman = BARMAN
    if plain_barman:
        conf, barman = None, "barman"
    return Config(
        console=ConsoleConfig(refresh_interval=5.0, journal_dir=str(tmp / "journal")),
        nodes=(
            NodeConfig(
                "bserver",
                NodeRole.PRIMARY,
                site="X",
                barman=barman,
                barman_config=conf,
                job_dir=str(tmp / "jobs-bserver"),
            ),
            NodeConfig(
                "geobserver",
                NodeRole.PASSIVE,
                site="Y",
                primary="bserver",
                barman=barman,
                barman_config=conf,
                job_dir=str(tmp / "jobs-geobserver"),
            ),
        ),
    )


def manager(cfg: Config) -> JobManager:
    transports = {name: LocalTransport(name) for name in NODES}
    return JobManager(transports, Journal(cfg.console.journal_dir), cfg, cancel_grace=3)


def ops_app(
    tmp: Path,
    *,
    snapshots: list[FleetSnapshot] | None = None,
    readonly: bool = False,
    with_jobs: bool = True,
    plain_barman: bool = False,
) -> tuple[DrConsoleApp, JobManager]:
    cfg = ops_config(tmp, plain_barman=plain_barman)
    jobs = manager(cfg)
    app = make_app(
        cfg,
        collector=ReplayCollector(snapshots or [fleet()]),
        now=frozen,
        readonly=readonly,
        jobs=jobs if with_jobs else None,
    )
    return app, jobs
