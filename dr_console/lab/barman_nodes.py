"""bserver and geobserver: each Barman user's ~/.barman.conf and ~/barman.d/<server>.conf, and
running barman as that user (reading its JSON defensively)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from dr_console.lab.errors import LabError
from dr_console.lab.proc import Account, run
from dr_console.lab.settings import PG_HOST, PRIMARY_NODE, LabSettings, PgCluster
from dr_console.lab.users import make_dir, write_owned


def barman_home(account: Account) -> Path:
    return account.home / "barman_home"


def global_conf(account: Account) -> str:
    home = account.home
    return (
        "; written by `drconsole lab up`\n"
        "[barman]\n"
        f"barman_user = {account.name}\n"
        f"configuration_files_directory = {home}/barman.d\n"
        f"barman_home = {home}/barman_home\n"
        f"log_file = {home}/log/barman.log\n"
        "log_level = INFO\n"
    )


def _conninfo(settings: LabSettings, cluster: PgCluster | None = None) -> str:
    port = (cluster or settings.main_cluster).port
    return (
        f"host={settings.pg_address} port={port} "
        f"user={settings.barman_role} dbname=postgres"
    )


def stream_server_conf(settings: LabSettings) -> str:
    """pgstream on bserver: pg_basebackup over the replication protocol and WAL by streaming
    only (archiver off, no ssh to the database host), the other deployment Barman documents."""
    cluster = settings.stream_cluster
    return (
        f"[{cluster.server}]\n"
        'description = "PostgreSQL 15, streaming only (drconsole lab)"\n'
        + _streaming_only(settings)
        + "create_slot = auto\n"
        "immediate_checkpoint = true\n"
    )


def _streaming_only(settings: LabSettings) -> str:
    """What both nodes say about pgstream: pg_basebackup and WAL by streaming, no archiver."""
    conninfo = _conninfo(settings, settings.stream_cluster)
    return (
        f"conninfo = {conninfo}\n"
        f"streaming_conninfo = {conninfo}\n"
        "backup_method = postgres\n"
        "archiver = off\n"
        "streaming_archiver = on\n"
        "slot_name = barman\n"
        f"path_prefix = {settings.pg_bindir}\n"
    )


def passive_stream_server_conf(settings: LabSettings) -> str:
    """geobserver's copy of pgstream: everything comes from bserver through primary_ssh_command;
    the rest is what the node would use once promoted."""
    cluster = settings.stream_cluster
    return (
        f"[{cluster.server}]\n"
        f'description = "Geo-redundant passive copy of {cluster.server} (from bserver)"\n'
        f"primary_ssh_command = ssh {settings.barman_user}@{PRIMARY_NODE}\n"
        + _streaming_only(settings)
    )


def primary_confs(settings: LabSettings) -> dict[str, str]:
    return {settings.server_name: primary_server_conf(settings),
            settings.stream_cluster.server: stream_server_conf(settings)}


def passive_confs(settings: LabSettings) -> dict[str, str]:
    return {settings.server_name: passive_server_conf(settings),
            settings.stream_cluster.server: passive_stream_server_conf(settings)}


def primary_server_conf(settings: LabSettings) -> str:
    return (
        f"[{settings.server_name}]\n"
        'description = "PostgreSQL 15 primary (drconsole lab)"\n'
        f"conninfo = {_conninfo(settings)}\n"
        f"ssh_command = ssh {settings.pg_user}@{PG_HOST}\n"
        "backup_method = rsync\n"
        "reuse_backup = link\n"
        "backup_options = concurrent_backup\n"
        "parallel_jobs = 2\n"
        "archiver = on\n"
        "streaming_archiver = on\n"
        f"streaming_conninfo = {_conninfo(settings)}\n"
        "slot_name = barman\n"
        "create_slot = auto\n"
        f"path_prefix = {settings.pg_bindir}\n"
        # A spread checkpoint makes backups look stuck for minutes (Barman waits for it).
        "immediate_checkpoint = true\n"
    )


def passive_server_conf(settings: LabSettings, name: str | None = None) -> str:
    """The passive node's copy of server NAME (default: the lab's own server)."""
    name = name or settings.server_name
    return (
        f"[{name}]\n"
        f'description = "Geo-redundant passive copy of {name} (from bserver)"\n'
        f"primary_ssh_command = ssh {settings.barman_user}@{PRIMARY_NODE}\n"
        f"conninfo = {_conninfo(settings)}\n"
        f"ssh_command = ssh {settings.pg_user}@{PG_HOST}\n"
        "backup_method = rsync\n"
        "reuse_backup = link\n"
        "archiver = on\n"
        f"path_prefix = {settings.pg_bindir}\n"
    )


def write_node(account: Account, server_confs: dict[str, str], pgpass: str) -> None:
    """The node's Barman configuration: SERVER_CONFS maps a server name to its file's text."""
    for sub in ("barman.d", "barman_home", "log"):
        make_dir(account.home / sub, account, 0o700)
    write_owned(account.home / ".barman.conf", global_conf(account), account, 0o600)
    for server_name, server_conf in server_confs.items():
        write_owned(account.home / "barman.d" / f"{server_name}.conf", server_conf, account,
                    0o600)
    write_owned(account.home / ".pgpass", pgpass, account, 0o600)


def barman(
    account: Account, venv_bin: Path, args: list[str], *, json_format: bool = True,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    argv = [str(venv_bin / "barman")]
    if json_format:
        argv += ["-f", "json"]
    return run(argv + args, timeout=timeout, account=account,
               path=f"{venv_bin}:/usr/local/bin:/usr/bin:/bin", check=False)


def barman_json(account: Account, venv_bin: Path, args: list[str], timeout: float = 120) -> Any:
    cp = barman(account, venv_bin, args, timeout=timeout)
    try:
        return json.loads(cp.stdout)
    except ValueError as exc:
        raise LabError(
            f"`barman {' '.join(args)}` as {account.name} gave no JSON (exit {cp.returncode}): "
            f"{(cp.stderr or cp.stdout).strip()[-400:]}"
        ) from exc


def failed_checks(account: Account, venv_bin: Path, server: str,
                  ignore: frozenset[str] = frozenset()) -> list[str]:
    """Failed `barman check` items other than IGNORE ([] when all OK), each with its hint."""
    data = barman_json(account, venv_bin, ["check", server])
    checks = data.get(server) if isinstance(data, dict) else None
    if not isinstance(checks, dict) or not checks:
        return [f"no check result ({json.dumps(data)[:200]})"]
    return [
        f"{name} ({item.get('hint', '')})".replace(" ()", "")
        for name, item in checks.items()
        if name not in ignore and (not isinstance(item, dict) or item.get("status") != "OK")
    ]


def backups(account: Account, venv_bin: Path, server: str) -> list[dict[str, Any]]:
    data = barman_json(account, venv_bin, ["list-backups", server])
    items = data.get(server) if isinstance(data, dict) else None
    return [b for b in items if isinstance(b, dict)] if isinstance(items, list) else []


def done_backup_ids(account: Account, venv_bin: Path, server: str) -> list[str]:
    return [str(b["backup_id"]) for b in backups(account, venv_bin, server)
            if b.get("status") == "DONE" and "backup_id" in b]
