"""drconsole configuration: TOML -> validated, frozen objects.

(The loader is being written; these types are the contract the rest of the code uses.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dr_console.models import NodeRole


class ConfigError(Exception):
    """A configuration problem, already phrased for the user: "FILE:LINE: key: what is wrong"."""


@dataclass(frozen=True)
class Thresholds:
    """Warning / critical limits. Durations are seconds, sizes bytes."""

    backup_max_age: float = 26 * 3600
    backup_max_age_critical: float = 50 * 3600
    wal_max_age: float = 15 * 60
    wal_max_age_critical: float = 60 * 60
    stream_lag_bytes: int = 64 * 1024 * 1024
    stream_lag_bytes_critical: int = 512 * 1024 * 1024
    geo_lag_segments: int = 4
    geo_lag_segments_critical: int = 16
    geo_lag_age: float = 10 * 60
    geo_lag_age_critical: float = 60 * 60
    archiver_failures: int = 1  # new failures in pg_stat_archiver since the last success: WARNING
    ready_wal_count: int = 16
    ready_wal_count_critical: int = 128


@dataclass(frozen=True)
class SshSpec:
    user: str | None
    host: str
    port: int | None = None
    key_file: Path | None = None
    known_hosts: Path | None = None  # None: the user's OpenSSH defaults
    config_file: Path | None = None  # an OpenSSH client config to honour (None: ~/.ssh/config)

    def display(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{user}{self.host}{port}"


@dataclass(frozen=True)
class NodeConfig:
    name: str
    role: NodeRole
    site: str | None = None
    ssh: SshSpec | None = None  # None: run barman locally
    primary: str | None = None  # passive nodes: name of the primary node they copy from
    barman: str = "barman"  # barman executable on the node
    barman_config: str | None = None  # passed as `barman -c FILE` when set
    job_dir: str = "~/.drconsole/jobs"  # on the node
    servers: tuple[str, ...] = ()  # restrict to these Barman servers (empty: all discovered)
    command_timeout: float | None = None  # overrides console.command_timeout


@dataclass(frozen=True)
class ServerConfig:
    name: str
    conninfo: str | None = None  # for direct PostgreSQL probes; never holds a password
    nodes: tuple[str, ...] = ()  # restrict to these nodes (empty: wherever discovered)
    verify_sql: str | None = None  # drills: a query whose result proves the restore is sane
    thresholds: Thresholds | None = None  # overrides console thresholds for this server


@dataclass(frozen=True)
class ConsoleConfig:
    refresh_interval: float = 5.0  # fast facts (PostgreSQL views, Barman processes)
    slow_refresh_interval: float = 60.0  # catalogue and barman check
    theme: str = "drconsole-dark"
    readonly: bool = False
    command_timeout: float = 60.0  # any single Barman/ssh command
    connect_timeout: float = 10.0  # ssh and PostgreSQL connects
    journal_dir: str = "~/.local/state/drconsole"  # on the console's host
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass(frozen=True)
class Config:
    console: ConsoleConfig
    nodes: tuple[NodeConfig, ...]
    servers: tuple[ServerConfig, ...] = ()
    source: Path | None = None  # the file it came from

    def node(self, name: str) -> NodeConfig:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def server(self, name: str) -> ServerConfig | None:
        for s in self.servers:
            if s.name == name:
                return s
        return None

    def thresholds_for(self, server: str) -> Thresholds:
        extra = self.server(server)
        if extra is not None and extra.thresholds is not None:
            return extra.thresholds
        return self.console.thresholds
