"""drconsole configuration: TOML -> validated, frozen objects.

The types come first (the contract the rest of the code uses), then the loader: `find_config`,
`load_config`, `parse_config`, `config_warnings`, and `dump_config` for `drconsole init`.
"""

from __future__ import annotations

import datetime
import difflib
import ipaddress
import os
import re
import stat
import tomllib
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

import tomli_w

from dr_console.core.validation import UnsafeValue, check_server_name
from dr_console.models import NodeRole
from dr_console.toml_lines import KeyPath, LineIndex, format_path


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
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{user}{host}{port}"


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

    def command_timeout(self, node: str) -> float:
        """The limit for any single command on NODE: its own command_timeout, else the console's."""
        return self.node(node).command_timeout or self.console.command_timeout

    def thresholds_for(self, server: str) -> Thresholds:
        extra = self.server(server)
        if extra is not None and extra.thresholds is not None:
            return extra.thresholds
        return self.console.thresholds


# --- loading -----------------------------------------------------------------------------------

DURATION_KEYS = (
    "backup_max_age", "backup_max_age_critical", "wal_max_age", "wal_max_age_critical",
    "geo_lag_age", "geo_lag_age_critical",
)  # fmt: skip
SIZE_KEYS = ("stream_lag_bytes", "stream_lag_bytes_critical")
COUNT_KEYS = (
    "geo_lag_segments", "geo_lag_segments_critical", "archiver_failures",
    "ready_wal_count", "ready_wal_count_critical",
)  # fmt: skip
THRESHOLD_KEYS = DURATION_KEYS + SIZE_KEYS + COUNT_KEYS
_THRESHOLD_PAIRS = tuple(
    (key, f"{key}_critical") for key in THRESHOLD_KEYS if f"{key}_critical" in THRESHOLD_KEYS
)
CONSOLE_KEYS = (
    "refresh_interval", "slow_refresh_interval", "theme", "readonly", "command_timeout",
    "connect_timeout", "journal_dir", "thresholds",
)  # fmt: skip
NODE_KEYS = (
    "name", "role", "site", "ssh", "ssh_port", "ssh_key", "known_hosts", "ssh_config", "primary",
    "barman", "barman_config", "job_dir", "servers", "command_timeout",
)  # fmt: skip
SERVER_KEYS = ("name", "conninfo", "nodes", "verify_sql", "thresholds")
TOP_KEYS = ("console", "nodes", "servers")

_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
_EXECUTABLE_RE = re.compile(r"[A-Za-z0-9_./+][A-Za-z0-9_./+-]*")  # never starts with '-'
_SSH_WORD_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # user or host: never starts with '-'
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)")
# PostgreSQL's convention: kB, MB, GB and TB are powers of 1024, like KiB, MiB, GiB and TiB.
_SIZE_UNITS = {
    "": 1, "B": 1, "kB": 1024, "KB": 1024, "KiB": 1024, "MB": 1024**2, "MiB": 1024**2,
    "GB": 1024**3, "GiB": 1024**3, "TB": 1024**4, "TiB": 1024**4,
}  # fmt: skip
_TOO_LARGE = 2**60  # no sane interval, duration or size comes near; keeps float() from overflowing
_PASSWORD_HINT = "conninfo must not contain a password; put it in ~/.pgpass (or passfile=…) instead"
_TOML_POSITION_RE = re.compile(r"\s*\((?:at line (\d+), column \d+|at end of document)\)$")


def find_config(explicit: str | None) -> Path | None:
    """The config file to use: --config, $DRCONSOLE_CONFIG, ./drconsole.toml, then the XDG dir.

    An explicit or $DRCONSOLE_CONFIG path is returned even if missing (loading it then says so);
    the other two places are used only when the file exists. None: no config anywhere.
    """
    for given in (explicit, os.environ.get("DRCONSOLE_CONFIG")):
        if given:
            return _expand(Path(given))
    local = Path("drconsole.toml")
    if local.is_file():
        return local
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else _expand(Path("~/.config"))
    candidate = base / "drconsole" / "config.toml"
    return candidate if candidate.is_file() else None


def _expand(path: Path) -> Path:
    try:
        return path.expanduser()
    except RuntimeError:  # no such user, or no home directory: loading then says "not found"
        return path


# No config is anywhere near this; a bigger "config" is a mistake (-c /dev/zero, a log file).
MAX_CONFIG_BYTES = 1 << 20


def read_config_bytes(path: Path, what: str = "config file") -> bytes:
    """The file's bytes, refusing what is not a regular file (a FIFO would block, a device never
    end) or larger than MAX_CONFIG_BYTES. ConfigError names the file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"{path}: is a directory, not a {what}")
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{path}: is not a regular file (a pipe, socket or device), "
                              f"not a {what}")  # fmt: skip
        if st.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: is {st.st_size} bytes, more than a {what} can be "
                              f"({MAX_CONFIG_BYTES} bytes)")  # fmt: skip
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: is more than {MAX_CONFIG_BYTES} bytes, too big for a {what}")
    return data


def load_config(path: Path) -> Config:
    data = read_config_bytes(path)
    try:
        text = data.decode("utf-8-sig")  # some editors start UTF-8 files with a BOM
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.start + 1].hex()
        raise ConfigError(
            f"{path}:{line}: not valid UTF-8 (byte 0x{bad}); save the file as UTF-8"
        ) from None
    return parse_config(text, path)


def config_warnings(path: Path) -> list[str]:
    """Problems worth telling the user about that do not stop drconsole from running."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return []
    if not stat.S_ISREG(mode):
        return []
    perms = stat.S_IMODE(mode)
    if perms & 0o022:
        return [f"{path} is writable by other users (mode {perms:04o}); chmod 600 it"]
    if perms & 0o044:
        return [f"{path} is readable by other users (mode {perms:04o}); chmod 600 it"]
    return []


def parse_config(text: str, source: Path | None) -> Config:
    label = str(source) if source is not None else "<config>"
    try:
        doc = tomllib.loads(text)
    except RecursionError:
        raise ConfigError(f"{label}: arrays or tables nested too deeply") from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION_RE.search(message)
        if match is None:
            raise ConfigError(f"{label}: TOML syntax error: {message}") from None
        line = int(match.group(1)) if match.group(1) else text.rstrip("\n").count("\n") + 1
        message = message[: match.start()]
        raise ConfigError(f"{label}:{line}: TOML syntax error: {message}") from None
    except ValueError:  # Python's limit on integer digits, hit inside tomllib
        raise ConfigError(f"{label}: TOML syntax error: a number is too long") from None
    return _Parser(label, LineIndex(text), source).config(doc)


def _number(value: float) -> str:
    if isinstance(value, int) and abs(value) >= 10**15:
        return "a number larger than 1e15"
    return f"{value:.6g}"


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, datetime.datetime):
        return "a date-time"
    if isinstance(value, datetime.date):
        return "a date"
    return "a time"


class _Parser:
    """Validates the tomllib document; the first problem raises a ConfigError naming its place."""

    def __init__(self, label: str, lines: LineIndex, source: Path | None) -> None:
        self.label = label
        self.lines = lines
        self.source = source

    def fail(self, path: KeyPath, message: str) -> NoReturn:
        line = self.lines.line_of(path)
        where = f"{self.label}:{line}" if line is not None else self.label
        raise ConfigError(f"{where}: {format_path(path)}: {message}")

    # --- scalars ---

    def table(self, path: KeyPath, value: object, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"expected a table, got {_describe(value)}")
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.fail((*path, key), f"unknown key {key!r}{hint}")
        return value

    def number(self, path: KeyPath, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(path, f"expected a number, got {_describe(value)}")
        if not 0 < value < _TOO_LARGE:  # also false for nan
            self.fail(path, f"must be a number greater than 0 (and sane), got {_number(value)}")
        return float(value)

    def integer(self, path: KeyPath, value: object, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"expected an integer, got {_describe(value)}")
        if value < minimum:
            self.fail(path, f"must be at least {minimum}, got {value}")
        return value

    def string(self, path: KeyPath, value: object) -> str:
        if not isinstance(value, str):
            self.fail(path, f"expected a string, got {_describe(value)}")
        if not value.strip():
            self.fail(path, "must not be empty")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            self.fail(path, "must not contain control characters (newline, tab…)")
        return value

    def boolean(self, path: KeyPath, value: object) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, got {_describe(value)}")
        return value

    def name(self, path: KeyPath, value: object, what: str) -> str:
        name = self.string(path, value)
        if not _NAME_RE.fullmatch(name):
            self.fail(path, f"invalid {what} name {name!r}: use letters, digits, '_', '.' and '-'")
        if what == "server" and (name == "all" or name.startswith("-")):
            self.fail(
                path,
                f"invalid server name {name!r}: Barman reserves 'all' and names starting with '-'",
            )
        if what == "server":
            # the rule every command applies to a server name, so a name that loads is usable
            try:
                check_server_name(name)
            except UnsafeValue as exc:
                self.fail(path, f"invalid server name: {exc}")
        return name

    def names(self, path: KeyPath, value: object, what: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.fail(path, f"expected an array of {what} names, got {_describe(value)}")
        items = tuple(self.name(path, item, what) for item in value)
        for k, item in enumerate(items):
            if item in items[:k]:
                self.fail(path, f"{what} {item!r} is listed twice")
        return items

    def file_path(self, path: KeyPath, value: object) -> Path:
        text = self.string(path, value)
        try:
            result = Path(text).expanduser()
        except RuntimeError:  # "~someone/…" where there is no such user
            self.fail(path, f"cannot expand {text!r}: no such user's home directory")
        if not result.is_absolute() and self.source is not None:
            result = self.source.parent / result  # relative to the config file, not the cwd
        return result

    def duration(self, path: KeyPath, value: object) -> float:
        if isinstance(value, str):
            match = _DURATION_RE.fullmatch(value.strip())
            if match is None:
                self.fail(
                    path,
                    f"invalid duration {value!r}: use seconds or a number with "
                    "s, m, h or d, such as '90s', '15m', '26h', '7d'",
                )
            value = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(path, f"expected a duration (seconds or '15m'), got {_describe(value)}")
        if not 0 <= value < _TOO_LARGE:
            self.fail(
                path, f"must be a duration of 0 seconds or more (and sane), got {_number(value)}"
            )
        return float(value)

    def size(self, path: KeyPath, value: object) -> int:
        if isinstance(value, str):
            match = _SIZE_RE.fullmatch(value.strip())
            if match is None or match.group(2) not in _SIZE_UNITS:
                self.fail(
                    path,
                    f"invalid size {value!r}: use bytes or a number with kB, MB, GB, "
                    "TB (or KiB, MiB, GiB, TiB; all powers of 1024)",
                )
            scaled = float(match.group(1)) * _SIZE_UNITS[match.group(2)]
            value = round(scaled) if scaled < _TOO_LARGE else _TOO_LARGE
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"expected a size (bytes or '64MiB'), got {_describe(value)}")
        if not 0 <= value < _TOO_LARGE:
            self.fail(path, f"must be a size of 0 bytes or more (and sane), got {_number(value)}")
        return value

    # --- tables ---

    def config(self, doc: dict[str, Any]) -> Config:
        self.table((), doc, TOP_KEYS)
        console = self.console(doc.get("console", {}))
        raw_nodes = self.array_of_tables("nodes", doc.get("nodes", []))
        if not raw_nodes:
            self.fail(("nodes",), "no nodes: add a [[nodes]] table for each Barman host")
        nodes = self.nodes(raw_nodes)
        node_names = [n.name for n in nodes]
        raw_servers = self.array_of_tables("servers", doc.get("servers", []))
        servers: list[ServerConfig] = []
        for index, raw in enumerate(raw_servers, start=1):
            server = self.server(("servers", index), raw, console.thresholds, node_names)
            for other, seen in enumerate(servers, start=1):
                if seen.name == server.name:
                    self.fail(
                        ("servers", index, "name"),
                        f"duplicate server name {server.name!r} (also servers[{other}])",
                    )
            servers.append(server)
        return Config(console=console, nodes=nodes, servers=tuple(servers), source=self.source)

    def array_of_tables(self, key: str, value: object) -> list[Any]:
        if not isinstance(value, list):
            self.fail((key,), f"expected an array of tables ([[{key}]]), got {_describe(value)}")
        return value

    def console(self, value: object) -> ConsoleConfig:
        path: KeyPath = ("console",)
        raw = self.table(path, value, CONSOLE_KEYS)
        kwargs: dict[str, Any] = {}
        for key in (
            "refresh_interval",
            "slow_refresh_interval",
            "command_timeout",
            "connect_timeout",
        ):
            if key in raw:
                kwargs[key] = self.number((*path, key), raw[key])
        for key in ("theme", "journal_dir"):
            if key in raw:
                kwargs[key] = self.string((*path, key), raw[key])
        journal = kwargs.get("journal_dir")
        if isinstance(journal, str):
            expanded = os.path.expanduser(journal)
            if expanded.startswith("~"):
                user = journal[1:].split("/", 1)[0]
                self.fail((*path, "journal_dir"),
                          f"{journal!r}: there is no user {user!r} whose home ~{user} names")
            elif not os.path.isabs(expanded):
                self.fail((*path, "journal_dir"),
                          f"{journal!r} must be an absolute path or start with ~/")
        if "readonly" in raw:
            kwargs["readonly"] = self.boolean((*path, "readonly"), raw["readonly"])
        kwargs["thresholds"] = self.thresholds(
            (*path, "thresholds"), raw.get("thresholds", {}), Thresholds()
        )
        return ConsoleConfig(**kwargs)

    def thresholds(self, path: KeyPath, value: object, base: Thresholds) -> Thresholds:
        raw = self.table(path, value, THRESHOLD_KEYS)
        values: dict[str, Any] = {}
        for key, item in raw.items():
            if key in DURATION_KEYS:
                values[key] = self.duration((*path, key), item)
            elif key in SIZE_KEYS:
                values[key] = self.size((*path, key), item)
            else:
                minimum = 1 if key == "archiver_failures" else 0
                values[key] = self.integer((*path, key), item, minimum)
        result = replace(base, **values)
        for warning, critical in _THRESHOLD_PAIRS:
            low, high = getattr(result, warning), getattr(result, critical)
            if low > high:
                key = warning if warning in raw else critical
                self.fail(
                    (*path, key),
                    f"{warning} ({_show(warning, low)}) must not exceed "
                    f"{critical} ({_show(critical, high)})",
                )
        return result

    def nodes(self, raw_nodes: list[Any]) -> tuple[NodeConfig, ...]:
        nodes: list[NodeConfig] = []
        for index, raw in enumerate(raw_nodes, start=1):
            node = self.node(("nodes", index), raw)
            for other, seen in enumerate(nodes, start=1):
                if seen.name == node.name:
                    self.fail(
                        ("nodes", index, "name"),
                        f"duplicate node name {node.name!r} (also nodes[{other}])",
                    )
            nodes.append(node)
        primaries = [n.name for n in nodes if n.role is NodeRole.PRIMARY]
        by_name = {n.name: n for n in nodes}
        for index, node in enumerate(nodes, start=1):
            path: KeyPath = ("nodes", index, "primary")
            if node.role is NodeRole.PRIMARY:
                if node.primary is not None:
                    self.fail(
                        path, "only a passive node names a primary (this node's role is primary)"
                    )
            elif node.primary is None:
                if len(primaries) != 1:
                    self.fail(path, f"passive node {node.name!r} needs primary = <a primary node>")
                nodes[index - 1] = replace(node, primary=primaries[0])
            elif node.primary not in by_name:
                self.fail(path, f"unknown node {node.primary!r} (nodes: {', '.join(by_name)})")
            elif by_name[node.primary].role is not NodeRole.PRIMARY:
                self.fail(
                    path, f"{node.primary!r} is a passive node; primary must name a primary node"
                )
        return tuple(nodes)

    def node(self, path: KeyPath, value: object) -> NodeConfig:
        raw = self.table(path, value, NODE_KEYS)
        if "name" not in raw:
            self.fail((*path, "name"), "missing: every node needs a name")
        kwargs: dict[str, Any] = {"name": self.name((*path, "name"), raw["name"], "node")}
        role = raw.get("role", "primary")
        if role not in ("primary", "passive"):
            self.fail((*path, "role"), f"expected 'primary' or 'passive', got {_describe(role)}")
        kwargs["role"] = NodeRole(role)
        for key in ("site", "barman", "barman_config", "job_dir"):
            if key in raw:
                kwargs[key] = self.string((*path, key), raw[key])
        self.node_commands(path, kwargs)
        if "primary" in raw:
            kwargs["primary"] = self.name((*path, "primary"), raw["primary"], "node")
        if "servers" in raw:
            kwargs["servers"] = self.names((*path, "servers"), raw["servers"], "server")
        if "command_timeout" in raw:
            kwargs["command_timeout"] = self.number(
                (*path, "command_timeout"), raw["command_timeout"]
            )
        kwargs["ssh"] = self.ssh(path, raw)
        return NodeConfig(**kwargs)

    def node_commands(self, path: KeyPath, kwargs: dict[str, Any]) -> None:
        """Settings that end up on the node's command lines: refused here, not at the first poll."""
        barman = kwargs.get("barman")
        if barman is not None and (
            not _EXECUTABLE_RE.fullmatch(barman) or ("/" in barman and barman[0] != "/")
        ):
            self.fail(
                (*path, "barman"),
                f"{barman!r} must be a plain command name or an absolute path",
            )
        config_file = kwargs.get("barman_config")
        if config_file is not None and not config_file.startswith("/"):
            self.fail((*path, "barman_config"), f"{config_file!r} must be an absolute path")
        job_dir = kwargs.get("job_dir")
        if job_dir is not None and not (job_dir[0] == "/" or job_dir == "~" or job_dir[:2] == "~/"):
            self.fail((*path, "job_dir"), f"{job_dir!r} must be absolute or start with '~/'")

    def ssh(self, path: KeyPath, raw: dict[str, Any]) -> SshSpec | None:
        if "ssh" not in raw:
            for key in ("ssh_port", "ssh_key", "known_hosts", "ssh_config"):
                if key in raw:
                    self.fail(
                        (*path, key),
                        f'{key} needs ssh = "[user@]host" (a node without ssh runs barman locally)',
                    )
            return None
        spec = self.string((*path, "ssh"), raw["ssh"])
        user, host, port = _parse_ssh(spec, lambda msg: self.fail((*path, "ssh"), msg))
        if "ssh_port" in raw:
            given = self.integer((*path, "ssh_port"), raw["ssh_port"])
            if not 1 <= given <= 65535:
                self.fail((*path, "ssh_port"), f"invalid port {given} (expected 1-65535)")
            if port is not None and port != given:
                self.fail(
                    (*path, "ssh_port"),
                    f"ssh_port = {given} contradicts the port in ssh = {spec!r}",
                )
            port = given
        files = {
            key: self.file_path((*path, key), raw[key])
            for key in ("ssh_key", "known_hosts", "ssh_config")
            if key in raw
        }
        return SshSpec(
            user=user,
            host=host,
            port=port,
            key_file=files.get("ssh_key"),
            known_hosts=files.get("known_hosts"),
            config_file=files.get("ssh_config"),
        )

    def server(
        self, path: KeyPath, value: object, base: Thresholds, node_names: list[str]
    ) -> ServerConfig:
        raw = self.table(path, value, SERVER_KEYS)
        if "name" not in raw:
            self.fail((*path, "name"), "missing: every server needs a name")
        kwargs: dict[str, Any] = {"name": self.name((*path, "name"), raw["name"], "server")}
        if "conninfo" in raw:
            conninfo = self.string((*path, "conninfo"), raw["conninfo"])
            problem = _conninfo_problem(conninfo)
            if problem:
                self.fail((*path, "conninfo"), problem)
            kwargs["conninfo"] = conninfo
        if "verify_sql" in raw:
            kwargs["verify_sql"] = self.string((*path, "verify_sql"), raw["verify_sql"])
        if "nodes" in raw:
            kwargs["nodes"] = self.names((*path, "nodes"), raw["nodes"], "node")
            for name in kwargs["nodes"]:
                if name not in node_names:
                    self.fail(
                        (*path, "nodes"), f"unknown node {name!r} (nodes: {', '.join(node_names)})"
                    )
        if "thresholds" in raw:
            kwargs["thresholds"] = self.thresholds((*path, "thresholds"), raw["thresholds"], base)
        return ServerConfig(**kwargs)


def _show(key: str, value: float) -> str:
    if key in DURATION_KEYS:
        shown = _format_duration(value)
        return shown if isinstance(shown, str) else f"{value}s"
    if key in SIZE_KEYS:
        return str(_format_size(int(value)))
    return str(value)


def _parse_ssh(spec: str, fail: Callable[[str], NoReturn]) -> tuple[str | None, str, int | None]:
    """Parse "[user@]host[:port]" with an IPv6 host in brackets -> (user, host, port)."""
    user: str | None = None
    rest = spec.strip()
    if "@" in rest:
        user, rest = rest.rsplit("@", 1)
        if not _SSH_WORD_RE.fullmatch(user):
            fail(f"invalid user {user!r} in ssh = {spec!r}")
    port_text: str | None = None
    if rest.startswith("["):
        close = rest.find("]")
        host = rest[1:close] if close > 0 else ""
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            fail(f"invalid IPv6 address {host!r} in ssh = {spec!r}")
        tail = rest[close + 1 :]
        if tail:
            if not tail.startswith(":"):
                fail(f"cannot parse ssh = {spec!r}: expected [user@]host[:port]")
            port_text = tail[1:]
    else:
        if rest.count(":") > 1:
            fail(
                f"cannot parse ssh = {spec!r}: put an IPv6 address in brackets, "
                "such as bmuser@[::1]:22"
            )
        host, _, port_text_or_empty = rest.partition(":")
        port_text = port_text_or_empty if ":" in rest else None
        if not _SSH_WORD_RE.fullmatch(host):
            fail(f"cannot parse ssh = {spec!r}: expected [user@]host[:port]")
    port: int | None = None
    if port_text is not None:
        if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            fail(f"invalid port {port_text!r} in ssh = {spec!r} (expected 1-65535)")
        port = int(port_text)
    return user, host, port


def _conninfo_problem(conninfo: str) -> str | None:
    """Why this conninfo is refused (unparsable, or holds a password), or None."""
    if conninfo.startswith(("postgresql://", "postgres://")):
        try:
            parts = urllib.parse.urlsplit(conninfo)
        except ValueError as exc:
            return f"cannot parse conninfo URI: {exc}"
        userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
        query_keys = {k for k, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)}
        if ":" in userinfo or "password" in query_keys:
            return _PASSWORD_HINT
        return None
    try:
        keywords = _conninfo_keywords(conninfo)
    except ValueError as exc:
        return f"cannot parse conninfo: {exc}"
    return _PASSWORD_HINT if "password" in keywords else None


def _conninfo_keywords(conninfo: str) -> list[str]:
    """Keywords of a libpq `key=value key='quoted value'` string (libpq's own grammar)."""
    keywords: list[str] = []
    i, n = 0, len(conninfo)
    while True:
        while i < n and conninfo[i].isspace():
            i += 1
        if i >= n:
            return keywords
        start = i
        while i < n and not conninfo[i].isspace() and conninfo[i] != "=":
            i += 1
        keyword = conninfo[start:i]
        while i < n and conninfo[i].isspace():
            i += 1
        if i >= n or conninfo[i] != "=":
            raise ValueError(f"missing '=' after {keyword!r}")
        i += 1
        while i < n and conninfo[i].isspace():
            i += 1
        if i < n and conninfo[i] == "'":
            i += 1
            while i < n and conninfo[i] != "'":
                i += 2 if conninfo[i] == "\\" else 1
            if i >= n:
                raise ValueError(f"unterminated quoted value for {keyword!r}")
            i += 1
        else:
            while i < n and not conninfo[i].isspace():
                i += 2 if conninfo[i] == "\\" else 1
        keywords.append(keyword)


# --- writing -----------------------------------------------------------------------------------


def dump_config(config: Config) -> str:
    """TOML text that parse_config reads back into an equal Config (apart from `source`)."""
    console = config.console
    out = [
        "[console]\n",
        tomli_w.dumps(
            {
                "refresh_interval": console.refresh_interval,
                "slow_refresh_interval": console.slow_refresh_interval,
                "theme": console.theme,
                "readonly": console.readonly,
                "command_timeout": console.command_timeout,
                "connect_timeout": console.connect_timeout,
                "journal_dir": console.journal_dir,
            }
        ),
    ]
    out += ["\n[console.thresholds]\n", tomli_w.dumps(_thresholds_dict(console.thresholds))]
    for node in config.nodes:
        out += ["\n[[nodes]]\n", tomli_w.dumps(_node_dict(node))]
    for server in config.servers:
        out += ["\n[[servers]]\n", tomli_w.dumps(_server_dict(server))]
        if server.thresholds is not None:
            overrides = _thresholds_dict(server.thresholds, console.thresholds)
            out += ["\n[servers.thresholds]\n", tomli_w.dumps(overrides)]
    return "".join(out)


def _thresholds_dict(values: Thresholds, base: Thresholds | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in THRESHOLD_KEYS:
        value = getattr(values, key)
        if base is not None and value == getattr(base, key):
            continue
        if key in DURATION_KEYS:
            out[key] = _format_duration(value)
        elif key in SIZE_KEYS:
            out[key] = _format_size(value)
        else:
            out[key] = value
    return out


def _format_duration(seconds: float) -> str | float:
    """The largest whole unit ("26h") when exact, else the number of seconds."""
    if not float(seconds).is_integer() or seconds <= 0 or seconds >= 2**53:
        return seconds
    whole = int(seconds)
    for unit in ("d", "h", "m"):
        if whole % _DURATION_UNITS[unit] == 0:
            return f"{whole // _DURATION_UNITS[unit]}{unit}"
    return f"{whole}s"


def _format_size(size: int) -> str | int:
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        if size > 0 and size % _SIZE_UNITS[unit] == 0 and size < 2**53:
            return f"{size // _SIZE_UNITS[unit]}{unit}"
    return size


def _node_dict(node: NodeConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"name": node.name, "role": node.role.value}
    if node.site is not None:
        out["site"] = node.site
    if node.ssh is not None:
        ssh = node.ssh
        host = f"[{ssh.host}]" if ":" in ssh.host else ssh.host
        out["ssh"] = (f"{ssh.user}@" if ssh.user else "") + host
        if ssh.port is not None:
            out["ssh_port"] = ssh.port
        for key, value in (
            ("ssh_key", ssh.key_file),
            ("known_hosts", ssh.known_hosts),
            ("ssh_config", ssh.config_file),
        ):
            if value is not None:
                out[key] = str(value)
    if node.primary is not None:
        out["primary"] = node.primary
    defaults = NodeConfig(name=node.name, role=node.role)
    for key in ("barman", "barman_config", "job_dir", "servers", "command_timeout"):
        value = getattr(node, key)
        if value != getattr(defaults, key):
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


def _server_dict(server: ServerConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"name": server.name}
    if server.conninfo is not None:
        out["conninfo"] = server.conninfo
    if server.nodes:
        out["nodes"] = list(server.nodes)
    if server.verify_sql is not None:
        out["verify_sql"] = server.verify_sql
    return out
