"""pgserver's PostgreSQL clusters, run by the lab's postgres user: the lab's own (pgserver,
archiving to bserver) and pgstream's (streaming only). Every function takes the cluster it acts
on; without one it acts on the lab's own.

Its settings live in a marked block written directly into postgresql.conf, never in an include
file: `barman recover` only neutralises archive_command in postgresql.conf and .auto.conf, so an
included archive_command would survive into a restored copy (FINDINGS P10).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from dr_console.lab.errors import LabError
from dr_console.lab.proc import Account, run
from dr_console.lab.settings import PRIMARY_NODE, LabSettings, PgCluster
from dr_console.lab.users import make_dir, write_owned

BEGIN = "# BEGIN drconsole-lab (written by `drconsole lab up`; edits inside are overwritten)"
END = "# END drconsole-lab"


def _bin(settings: LabSettings, name: str) -> str:
    return str(settings.pg_bindir / name)


def conf_block(settings: LabSettings, venv_bin: Path, cluster: PgCluster | None = None) -> str:
    cluster = cluster or settings.main_cluster
    archive = (
        f"{venv_bin}/barman-wal-archive -U {settings.barman_user} "
        f"{PRIMARY_NODE} {cluster.server} %p"
    )
    archiving = ["archive_mode = on", f"archive_command = '{archive}'"] if cluster.archives \
        else ["archive_mode = off"]
    lines = [
        BEGIN,
        f"listen_addresses = '{settings.pg_address}'",
        f"port = {cluster.port}",
        f"unix_socket_directories = '{settings.run_dir}'",
        "max_connections = 50",
        "wal_level = replica",
        *archiving,
        "max_wal_senders = 10",
        "max_replication_slots = 10",
        "log_line_prefix = '%m [%p] %q%u@%d '",
        END,
    ]
    return "\n".join(lines) + "\n"


def hba_text(settings: LabSettings) -> str:
    bm, mon = settings.barman_role, settings.monitor_role
    return (
        "# written by `drconsole lab up`\n"
        "local   all          all                        peer\n"
        # ssh and TCP between loopback "hosts" arrive from 127.0.0.1 (FINDINGS P6).
        f'host    all          "{bm}"    127.0.0.0/8  scram-sha-256\n'
        f'host    replication  "{bm}"    127.0.0.0/8  scram-sha-256\n'
        f'host    all          "{mon}"   127.0.0.0/8  scram-sha-256\n'
    )


def with_block(conf: str, block: str) -> str:
    """CONF with the lab block replaced (or appended)."""
    start, end = conf.find(BEGIN), conf.find(END)
    if start != -1 and end != -1 and end > start:
        after = conf[end + len(END) :]
        return conf[:start] + block + after.removeprefix("\n")
    return conf.rstrip("\n") + "\n\n" + block


def is_running(settings: LabSettings, pg: Account, cluster: PgCluster | None = None) -> bool:
    cluster = cluster or settings.main_cluster
    if not (cluster.data / "postmaster.pid").exists():
        return False
    cp = run([_bin(settings, "pg_ctl"), "status", "-D", str(cluster.data)], timeout=15,
             account=pg, check=False)
    return cp.returncode == 0


def accepting(settings: LabSettings, cluster: PgCluster | None = None) -> bool:
    """pg_isready over TCP, as whoever asks. It stops at the password request; naming a role
    that pg_hba admits keeps "no pg_hba.conf entry" errors out of the server log."""
    cluster = cluster or settings.main_cluster
    cp = run(
        [_bin(settings, "pg_isready"), "-q", "-h", settings.pg_address,
         "-p", str(cluster.port), "-U", settings.monitor_role, "-d", "postgres", "-t", "5"],
        timeout=10,
        check=False,
    )
    return cp.returncode == 0


def ensure_cluster(settings: LabSettings, pg: Account, venv_bin: Path,
                   cluster: PgCluster | None = None) -> bool:
    """initdb when needed and write the lab settings; True when the config changed."""
    cluster = cluster or settings.main_cluster
    make_dir(cluster.directory, pg, 0o700)
    make_dir(cluster.log.parent, pg, 0o700)
    make_dir(settings.run_dir, pg, 0o755)
    if not (cluster.data / "PG_VERSION").exists():
        run(
            [
                _bin(settings, "initdb"), "-D", str(cluster.data), "-E", "UTF8",
                "--locale=C.UTF-8", "--auth-local=peer", "--auth-host=scram-sha-256",
                "--no-sync", "--no-instructions",
            ],
            timeout=120,
            account=pg,
        )
    conf_path = cluster.data / "postgresql.conf"
    conf = conf_path.read_text(encoding="utf-8")
    block = conf_block(settings, venv_bin, cluster)
    changed = write_owned(conf_path, with_block(conf, block), pg, 0o600)
    hba_changed = write_owned(cluster.data / "pg_hba.conf", hba_text(settings), pg, 0o600)
    return changed or hba_changed


def start(settings: LabSettings, pg: Account, venv_bin: Path,
          cluster: PgCluster | None = None) -> None:
    cluster = cluster or settings.main_cluster
    run(
        [
            _bin(settings, "pg_ctl"), "start", "-w", "-t", "60", "-D", str(cluster.data),
            "-l", str(cluster.log),
        ],
        timeout=90,
        account=pg,
        path=f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        capture=False,
    )
    if not accepting(settings, cluster):
        raise LabError(f"PostgreSQL ({cluster.server}) started but does not accept "
                       f"connections; see {cluster.log}")


def restart(settings: LabSettings, pg: Account, venv_bin: Path,
            cluster: PgCluster | None = None) -> None:
    stop(settings, pg, cluster)
    start(settings, pg, venv_bin, cluster)


def stop(settings: LabSettings, pg: Account, cluster: PgCluster | None = None) -> None:
    cluster = cluster or settings.main_cluster
    if not is_running(settings, pg, cluster):
        return
    run(
        [_bin(settings, "pg_ctl"), "stop", "-w", "-t", "60", "-m", "fast",
         "-D", str(cluster.data)],
        timeout=90,
        account=pg,
        capture=False,
    )


def psql(settings: LabSettings, pg: Account, sql: str, dbname: str = "postgres",
         timeout: float = 60, cluster: PgCluster | None = None) -> str:
    """Run SQL (given on stdin, so secrets never show in a process list) as the postgres user."""
    cluster = cluster or settings.main_cluster
    cp = run(
        [
            _bin(settings, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-h", str(settings.run_dir), "-p", str(cluster.port), "-d", dbname, "-f", "-",
        ],
        timeout=timeout,
        account=pg,
        input_text=sql,
    )
    return cp.stdout


def ensure_role(settings: LabSettings, pg: Account, role: str, password: str,
                attributes: str, grants: tuple[str, ...] = (),
                cluster: PgCluster | None = None) -> None:
    exists = psql(settings, pg, f"SELECT 1 FROM pg_roles WHERE rolname = '{role}';",
                  cluster=cluster).strip()
    verb = "ALTER" if exists == "1" else "CREATE"
    statements = [f"{verb} ROLE \"{role}\" WITH LOGIN {attributes} PASSWORD '{password}';"]
    statements += [f'GRANT {g} TO "{role}";' for g in grants]
    psql(settings, pg, "\n".join(statements), cluster=cluster)


def read_pgpass_password(path: Path, settings: LabSettings, role: str) -> str | None:
    prefix = f"{settings.pg_address}:{settings.pg_port}:*:{role}:"
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith(prefix):
                return line[len(prefix):]
    except OSError:
        return None
    return None


def pgpass_line(settings: LabSettings, role: str, password: str) -> str:
    """ROLE's line for every lab cluster (the same password on each)."""
    return "".join(f"{settings.pg_address}:{c.port}:*:{role}:{password}\n"
                   for c in settings.clusters)


def new_password() -> str:
    return secrets.token_urlsafe(24)  # [A-Za-z0-9_-]: safe inside SQL quotes and .pgpass


