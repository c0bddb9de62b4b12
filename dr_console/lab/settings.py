"""Where and as whom a lab runs. Every value is a setting, so two labs can run side by side.

The defaults are the reference deployment on loopback: pgserver 127.0.0.2, bserver 127.0.0.3,
geobserver 127.0.0.4, a private sshd on port 2222 and PostgreSQL on 5433. The PostgreSQL
superuser role that Barman uses has the same name as the Barman OS user, as in the reference.

Run as root, the three hosts are three OS users. Single-user mode (`single_user`, what a user
who is not root gets) runs all three as that user, each host with a home of its own under
<base>/home/<host>; see lab.py.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import pwd
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dr_console.core.barman_versions import NEWEST_SUPPORTED, OLDEST_SUPPORTED, BarmanVersion
from dr_console.lab.errors import LabError

# The ssh aliases every lab user knows (in its ~/.ssh/config); the console config uses addresses.
PG_HOST = "pgserver"
PRIMARY_NODE = "bserver"
PASSIVE_NODE = "geobserver"

# The second cluster's Barman server: backup_method = postgres, WAL by streaming only.
STREAM_SERVER = "pgstream"

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]{0,31}$")
_ROLE = re.compile(r"^[a-z_][a-z0-9_-]{0,62}$")
# Paths end up inside postgresql.conf quotes, ssh configs and barman configs: keep them plain.
_PATH = re.compile(r"^/[A-Za-z0-9._/+-]*$")


@dataclass(frozen=True)
class PgCluster:
    """One of the lab's PostgreSQL clusters on pgserver, and the Barman server that manages it:
    pgserver archives WAL to bserver and is backed up by rsync over ssh; pgstream is backed up
    with pg_basebackup and streams its WAL (archive_mode off, no ssh to the database host)."""

    server: str
    port: int
    directory: Path
    archives: bool

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "log" / "postgresql.log"


@dataclass(frozen=True)
class LabSettings:
    base_dir: Path = Path("/var/tmp/drconsole-lab")
    pg_address: str = "127.0.0.2"
    bserver_address: str = "127.0.0.3"
    geo_address: str = "127.0.0.4"
    ssh_port: int = 2222
    pg_port: int = 5433
    pg_user: str = "drlab-postgres"
    barman_user: str = "drlab-bmuser"
    geo_user: str = "drlab-geobmuser"
    monitor_role: str = "drconsole_monitor"
    cron_interval: float = 15.0
    barman_version: str = "3.19.1"
    server_name: str = "pgserver"
    pg_bindir: Path = Path("/usr/lib/postgresql/15/bin")
    single_user: bool = False

    # --- derived names and paths -------------------------------------------------------------

    @property
    def barman_role(self) -> str:
        return self.barman_user

    @property
    def users(self) -> tuple[str, str, str]:
        return (self.pg_user, self.barman_user, self.geo_user)

    @property
    def addresses(self) -> tuple[str, str, str]:
        return (self.pg_address, self.bserver_address, self.geo_address)

    @property
    def host_addresses(self) -> dict[str, str]:
        return {
            PG_HOST: self.pg_address,
            PRIMARY_NODE: self.bserver_address,
            PASSIVE_NODE: self.geo_address,
        }

    @property
    def host_users(self) -> dict[str, str]:
        return {PG_HOST: self.pg_user, PRIMARY_NODE: self.barman_user, PASSIVE_NODE: self.geo_user}

    @property
    def state_file(self) -> Path:
        return self.base_dir / "lab.json"

    @property
    def config_path(self) -> Path:
        return self.base_dir / "drconsole.toml"

    @property
    def home_root(self) -> Path:
        return self.base_dir / "home"

    def home_of(self, user: str) -> Path:
        """Root mode: the home of lab user USER."""
        return self.home_root / user

    def host_home(self, host: str) -> Path:
        """The home (HOME) of lab host HOST: its user's home, or in single-user mode its own."""
        if self.single_user:
            return self.home_root / host
        return self.home_of(self.host_users[host])

    def host_of_address(self, address: str) -> str:
        return next(host for host, addr in self.host_addresses.items() if addr == address)

    def path_prefix(self) -> str:
        """What goes before PATH for the lab's processes: single-user mode's `ssh` wrapper."""
        return f"{self.bin_dir}:" if self.single_user else ""

    @property
    def sshd_dir(self) -> Path:
        return self.base_dir / "sshd"

    @property
    def run_dir(self) -> Path:
        return self.base_dir / "run"

    @property
    def bin_dir(self) -> Path:
        return self.base_dir / "bin"

    @property
    def pg_dir(self) -> Path:
        return self.base_dir / "pg"

    @property
    def pg_data(self) -> Path:
        return self.pg_dir / "data"

    @property
    def pg_log(self) -> Path:
        return self.pg_dir / "log" / "postgresql.log"

    @property
    def main_cluster(self) -> PgCluster:
        return PgCluster(self.server_name, self.pg_port, self.pg_dir, archives=True)

    @property
    def stream_cluster(self) -> PgCluster:
        return PgCluster(STREAM_SERVER, self.pg_port + 1, self.base_dir / "pg-stream",
                         archives=False)

    @property
    def clusters(self) -> tuple[PgCluster, PgCluster]:
        return (self.main_cluster, self.stream_cluster)

    @property
    def server_names(self) -> tuple[str, str]:
        return (self.server_name, STREAM_SERVER)

    def cluster_of(self, server: str) -> PgCluster:
        for cluster in self.clusters:
            if cluster.server == server:
                return cluster
        raise LabError(f"{server!r} is not a lab server ({', '.join(self.server_names)})")

    @property
    def console_dir(self) -> Path:
        return self.base_dir / "console"

    # --- construction ------------------------------------------------------------------------

    def with_address_base(self, first: str) -> LabSettings:
        """pgserver at FIRST, bserver at FIRST+1, geobserver at FIRST+2."""
        try:
            ip = ipaddress.IPv4Address(first)
        except ValueError as exc:
            raise LabError(f"--address-base {first!r} is not an IPv4 address") from exc
        return dataclasses.replace(
            self, pg_address=str(ip), bserver_address=str(ip + 1), geo_address=str(ip + 2)
        )

    def with_user_prefix(self, prefix: str) -> LabSettings:
        """PREFIX-postgres, PREFIX-bmuser, PREFIX-geobmuser (the default prefix is drlab)."""
        return dataclasses.replace(
            self,
            pg_user=f"{prefix}-postgres",
            barman_user=f"{prefix}-bmuser",
            geo_user=f"{prefix}-geobmuser",
        )

    def as_single_user(self, user: str) -> LabSettings:
        """All three hosts run as USER (the caller, who is not root)."""
        return dataclasses.replace(self, single_user=True, pg_user=user, barman_user=user,
                                   geo_user=user)

    def validate(self) -> LabSettings:
        """Raise LabError naming the first bad setting; return self for chaining."""
        for name in ("base_dir", "pg_bindir"):
            value = str(getattr(self, name))
            if not _PATH.match(value) or "/../" in value + "/" or value.rstrip("/") == "":
                raise LabError(f"{name}: {value!r} must be an absolute path of plain characters")
        for name in ("pg_address", "bserver_address", "geo_address"):
            value = getattr(self, name)
            try:
                ip = ipaddress.IPv4Address(value)
            except ValueError as exc:
                raise LabError(f"{name}: {value!r} is not an IPv4 address") from exc
            if not ip.is_loopback:
                raise LabError(f"{name}: {value} is not a loopback address (127.0.0.0/8)")
            if value == "127.0.0.1":
                raise LabError(f"{name}: use a dedicated loopback address, not 127.0.0.1")
        if len(set(self.addresses)) != 3:
            raise LabError("the three lab addresses must differ")
        for name in ("ssh_port", "pg_port"):
            port = getattr(self, name)
            if not isinstance(port, int) or not 1024 <= port <= 65535:
                raise LabError(f"{name}: {port!r} must be a port number between 1024 and 65535")
        if self.pg_port == 65535 or self.ssh_port in (self.pg_port, self.pg_port + 1):
            raise LabError(f"pg_port: {self.pg_port} and {self.pg_port + 1} (the {STREAM_SERVER} "
                           "cluster) must be free ports other than ssh_port")
        for name in ("pg_user", "barman_user", "geo_user"):
            if not _NAME.match(getattr(self, name)):
                raise LabError(f"{name}: {getattr(self, name)!r} is not a valid user name")
        if self.single_user and len(set(self.users)) != 1:
            raise LabError("single-user mode: the three lab users must be the same user")
        if not self.single_user and len(set(self.users)) != 3:
            raise LabError("the three lab users must differ")
        for name in ("monitor_role", "server_name"):
            if not _ROLE.match(getattr(self, name)):
                raise LabError(f"{name}: {getattr(self, name)!r} is not a valid name")
        if self.server_name == STREAM_SERVER:
            raise LabError(f"server_name: {STREAM_SERVER} is the lab's second server")
        if not 1 <= self.cron_interval <= 3600:
            raise LabError(f"cron_interval: {self.cron_interval!r} must be 1..3600 seconds")
        if not re.match(r"^\d+\.\d+\.\d+$", self.barman_version):
            raise LabError(f"barman_version: {self.barman_version!r} is not X.Y.Z")
        version = BarmanVersion.parse(self.barman_version)
        if not OLDEST_SUPPORTED <= version <= NEWEST_SUPPORTED:
            raise LabError(f"barman_version: {version} is outside the supported range "
                           f"{OLDEST_SUPPORTED} to {NEWEST_SUPPORTED}")
        return self

    # --- persistence (lab.json) ----------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabSettings:
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name in data:
                value = data[f.name]
                kwargs[f.name] = Path(value) if f.name in ("base_dir", "pg_bindir") else value
        return cls(**kwargs).validate()


def default_settings() -> LabSettings:
    """The lab `drconsole lab` builds without options: the reference deployment as three OS
    users for root; for anyone else their single-user lab in /var/tmp/drconsole-lab-<user>, on
    loopback addresses of their own (127.<uid / 256>.<uid % 256>.2-4), so that it runs beside
    a root lab and other users' labs without choosing ports."""
    uid = os.geteuid()
    if uid == 0:
        return LabSettings()
    user = pwd.getpwuid(uid).pw_name
    high, low = (uid >> 8) & 255, uid & 255
    if (high, low) == (0, 0):  # 127.0.0.x is the root lab's
        high = 255
    return (
        LabSettings(base_dir=Path(f"/var/tmp/drconsole-lab-{user}"))
        .with_address_base(f"127.{high}.{low}.2")
        .as_single_user(user)
    )
