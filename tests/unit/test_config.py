"""The configuration loader: what a user sees for good files, bad files and the lookup order."""

from __future__ import annotations

import dataclasses
import os
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dr_console.config import (
    Config,
    ConfigError,
    ConsoleConfig,
    NodeConfig,
    ServerConfig,
    SshSpec,
    Thresholds,
    config_warnings,
    dump_config,
    find_config,
    load_config,
    parse_config,
)
from dr_console.models import NodeRole

SAMPLES = Path(__file__).resolve().parents[2] / "sample-configs"

NODE = '[[nodes]]\nname = "bserver"\nssh = "bmuser@bserver"\n'
TWO_NODES = NODE + '\n[[nodes]]\nname = "geo"\nrole = "passive"\nssh = "bmuser@geo"\n'


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "drconsole.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str | bytes) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    prefix = f"{path}"
    assert message.startswith(prefix)
    return message[len(prefix) :]


# --- every error, with its exact message --------------------------------------------------------

ERRORS = [
    pytest.param(
        "[console]\nrefresh_intervall = 5\n\n" + NODE,
        ":2: console.refresh_intervall: unknown key 'refresh_intervall'"
        " (did you mean 'refresh_interval'?)",
        id="unknown-key-with-suggestion",
    ),
    pytest.param(
        TWO_NODES + 'colour = "red"\n',
        ":9: nodes[2].colour: unknown key 'colour'",
        id="unknown-key-in-second-node",
    ),
    pytest.param(
        '[console]\n"odd key" = 1\n\n' + NODE,
        ":2: console.\"odd key\": unknown key 'odd key'",
        id="unknown-quoted-key",
    ),
    pytest.param(
        NODE + "site = 5\n",
        ":4: nodes[1].site: expected a string, got integer 5",
        id="wrong-type-string",
    ),
    pytest.param(
        "# settings\n\nconsole.theme = 'x'\nconsole.refresh_intervall = 1\n" + NODE,
        ":4: console.refresh_intervall: unknown key 'refresh_intervall'"
        " (did you mean 'refresh_interval'?)",
        id="dotted-key-at-top-level",
    ),
    pytest.param(
        "[ console ]\ntheme = 'x'\n\n[ console . thresholds ]  # limits\nwal_max_age = []\n" + NODE,
        ":5: console.thresholds.wal_max_age: expected a duration (seconds or '15m'), got an array",
        id="spaced-headers",
    ),
    pytest.param(
        "[consol]\ntheme = 'x'\n\n" + NODE,
        ":1: consol: unknown key 'consol' (did you mean 'console'?)",
        id="unknown-top-level-table",
    ),
    pytest.param(
        NODE + '\n[[servers]]\nname = "pg"\n\n[servers.thresholds]\nwal_max_aeg = "5m"\n',
        ":9: servers[1].thresholds.wal_max_aeg: unknown key 'wal_max_aeg'"
        " (did you mean 'wal_max_age'?)",
        id="unknown-key-in-server-thresholds",
    ),
    pytest.param(
        '[console]\nrefresh_interval = "abc"\n\n' + NODE,
        ":2: console.refresh_interval: expected a number, got string 'abc'",
        id="wrong-type-string-for-number",
    ),
    pytest.param(
        "[console]\ncommand_timeout = true\n\n" + NODE,
        ":2: console.command_timeout: expected a number, got boolean true",
        id="wrong-type-bool-for-number",
    ),
    pytest.param(
        "[console]\nrefresh_interval = 0\n\n" + NODE,
        ":2: console.refresh_interval: must be a number greater than 0 (and sane), got 0",
        id="zero-interval",
    ),
    pytest.param(
        "[console]\nconnect_timeout = inf\n\n" + NODE,
        ":2: console.connect_timeout: must be a number greater than 0 (and sane), got inf",
        id="infinite-timeout",
    ),
    pytest.param(
        "[console]\nconnect_timeout = " + "9" * 400 + "\n\n" + NODE,
        ":2: console.connect_timeout: must be a number greater than 0 (and sane), got a number"
        " larger than 1e15",
        id="huge-integer-timeout",
    ),
    pytest.param(
        '[console.thresholds]\nstream_lag_bytes_critical = "' + "9" * 400 + 'GiB"\n\n' + NODE,
        ":2: console.thresholds.stream_lag_bytes_critical: must be a size of 0 bytes or more"
        " (and sane), got a number larger than 1e15",
        id="huge-size",
    ),
    pytest.param(
        "[console.thresholds]\nwal_max_age = -1\n\n" + NODE,
        ":2: console.thresholds.wal_max_age: must be a duration of 0 seconds or more (and sane),"
        " got -1",
        id="negative-duration",
    ),
    pytest.param(
        '[console]\nreadonly = "yes"\n\n' + NODE,
        ":2: console.readonly: expected true or false, got string 'yes'",
        id="wrong-type-bool",
    ),
    pytest.param(
        "console = 5\n" + NODE,
        ":1: console: expected a table, got integer 5",
        id="console-not-a-table",
    ),
    pytest.param(
        '[console.thresholds]\nwal_max_age = "15 minutes"\n\n' + NODE,
        ":2: console.thresholds.wal_max_age: invalid duration '15 minutes': use seconds or a"
        " number with s, m, h or d, such as '90s', '15m', '26h', '7d'",
        id="bad-duration",
    ),
    pytest.param(
        '[console.thresholds]\nstream_lag_bytes = "64 MiBs"\n\n' + NODE,
        ":2: console.thresholds.stream_lag_bytes: invalid size '64 MiBs': use bytes or a number"
        " with kB, MB, GB, TB (or KiB, MiB, GiB, TiB; all powers of 1024)",
        id="bad-size",
    ),
    pytest.param(
        "[console.thresholds]\ngeo_lag_segments = 2.5\n\n" + NODE,
        ":2: console.thresholds.geo_lag_segments: expected an integer, got float 2.5",
        id="float-for-count",
    ),
    pytest.param(
        '[console.thresholds]\nwal_max_age = "2h"\n\n' + NODE,
        ":2: console.thresholds.wal_max_age: wal_max_age (2h) must not exceed"
        " wal_max_age_critical (1h)",
        id="warning-above-critical",
    ),
    pytest.param(
        NODE + '\n[[servers]]\nname = "pg"\n[servers.thresholds]\nbackup_max_age_critical = "1h"\n',
        ":8: servers[1].thresholds.backup_max_age_critical: backup_max_age (26h) must not exceed"
        " backup_max_age_critical (1h)",
        id="server-critical-below-inherited-warning",
    ),
    pytest.param(
        NODE + '\n[[nodes]]\nname = "bserver"\n',
        ":6: nodes[2].name: duplicate node name 'bserver' (also nodes[1])",
        id="duplicate-node",
    ),
    pytest.param(
        NODE + '\n[[servers]]\nname = "pg"\n\n[[servers]]\nname = "pg"\n',
        ":9: servers[2].name: duplicate server name 'pg' (also servers[1])",
        id="duplicate-server",
    ),
    pytest.param(
        '[[nodes]]\nname = "b server"\n',
        ":2: nodes[1].name: invalid node name 'b server': use letters, digits, '_', '.' and '-'",
        id="bad-node-name",
    ),
    pytest.param(
        '[[nodes]]\nssh = "bmuser@bserver"\n',
        ":1: nodes[1].name: missing: every node needs a name",
        id="node-without-name",
    ),
    pytest.param(
        NODE + '[[servers]]\nname = "all"\n',
        ":5: servers[1].name: invalid server name 'all': Barman reserves 'all' and names"
        " starting with '-'",
        id="server-named-all",
    ),
    pytest.param(
        NODE + '[[servers]]\nname = "-pg"\n',
        ":5: servers[1].name: invalid server name '-pg': Barman reserves 'all' and names"
        " starting with '-'",
        id="server-name-dash",
    ),
    pytest.param(
        NODE + '[[servers]]\nname = "pg/1"\n',
        ":5: servers[1].name: invalid server name 'pg/1': use letters, digits, '_', '.' and '-'",
        id="server-name-chars",
    ),
    pytest.param(
        NODE + '[[servers]]\nname = "' + "p" * 129 + '"\n',
        ":5: servers[1].name: invalid server name: server name '" + "p" * 76
        + "... is longer than 128 characters",
        id="server-name-too-long-for-every-command",
    ),
    pytest.param(
        NODE + '\n[[nodes]]\nname = "b2"\n\n[[nodes]]\nname = "geo"\nrole = "passive"\n',
        ":8: nodes[3].primary: passive node 'geo' needs primary = <a primary node>",
        id="passive-without-primary-two-primaries",
    ),
    pytest.param(
        '[[nodes]]\nname = "geo"\nrole = "passive"\n',
        ":1: nodes[1].primary: passive node 'geo' needs primary = <a primary node>",
        id="passive-without-any-primary",
    ),
    pytest.param(
        TWO_NODES + 'primary = "nope"\n',
        ":9: nodes[2].primary: unknown node 'nope' (nodes: bserver, geo)",
        id="primary-unknown",
    ),
    pytest.param(
        TWO_NODES + 'primary = "geo2"\n\n[[nodes]]\nname = "geo2"\nrole = "passive"\n',
        ":9: nodes[2].primary: 'geo2' is a passive node; primary must name a primary node",
        id="primary-is-passive",
    ),
    pytest.param(
        NODE + 'ssh_key = "~no_such_user_here/.ssh/id"\n',
        ":4: nodes[1].ssh_key: cannot expand '~no_such_user_here/.ssh/id': no such user's home"
        " directory",
        id="ssh-key-unknown-user-home",
    ),
    pytest.param(
        NODE + 'primary = "bserver"\n',
        ":4: nodes[1].primary: only a passive node names a primary (this node's role is primary)",
        id="primary-key-on-primary",
    ),
    pytest.param(
        '[[nodes]]\nname = "b"\nrole = "standby"\n',
        ":3: nodes[1].role: expected 'primary' or 'passive', got string 'standby'",
        id="bad-role",
    ),
    pytest.param(
        '[[nodes]]\nname = "b"\nssh = "bm user@bserver"\n',
        ":3: nodes[1].ssh: invalid user 'bm user' in ssh = 'bm user@bserver'",
        id="ssh-bad-user",
    ),
    pytest.param(
        '[[nodes]]\nname = "b"\nssh = "bmuser@"\n',
        ":3: nodes[1].ssh: cannot parse ssh = 'bmuser@': expected [user@]host[:port]",
        id="ssh-no-host",
    ),
    pytest.param(
        '[[nodes]]\nname = "b"\nssh = "-oProxyCommand=x"\n',
        ":3: nodes[1].ssh: cannot parse ssh = '-oProxyCommand=x': expected [user@]host[:port]",
        id="ssh-option-injection",
    ),
    pytest.param(
        '[[nodes]]\nname = "b"\nssh = "bmuser@::1"\n',
        ":3: nodes[1].ssh: cannot parse ssh = 'bmuser@::1': put an IPv6 address in brackets,"
        " such as bmuser@[::1]:22",
        id="ssh-ipv6-without-brackets",
    ),
    pytest.param(
        '[[nodes]]\nname = "b"\nssh = "bmuser@[::zz]"\n',
        ":3: nodes[1].ssh: invalid IPv6 address '::zz' in ssh = 'bmuser@[::zz]'",
        id="ssh-bad-ipv6",
    ),
    pytest.param(
        '[[nodes]]\nname = "b"\nssh = "bmuser@bserver:99999"\n',
        ":3: nodes[1].ssh: invalid port '99999' in ssh = 'bmuser@bserver:99999' (expected 1-65535)",
        id="ssh-port-out-of-range",
    ),
    pytest.param(
        '[[nodes]]\nname = "b"\nssh = "bserver:ssh"\n',
        ":3: nodes[1].ssh: invalid port 'ssh' in ssh = 'bserver:ssh' (expected 1-65535)",
        id="ssh-port-not-a-number",
    ),
    pytest.param(
        '[[nodes]]\nname = "b"\nssh = "bserver"\nssh_port = 0\n',
        ":4: nodes[1].ssh_port: invalid port 0 (expected 1-65535)",
        id="ssh-port-key-zero",
    ),
    pytest.param(
        '[[nodes]]\nname = "b"\nssh = "bserver:22"\nssh_port = 2222\n',
        ":4: nodes[1].ssh_port: ssh_port = 2222 contradicts the port in ssh = 'bserver:22'",
        id="ssh-port-contradiction",
    ),
    pytest.param(
        '[[nodes]]\nname = "b"\nssh_key = "~/.ssh/id"\n',
        ':3: nodes[1].ssh_key: ssh_key needs ssh = "[user@]host" (a node without ssh runs'
        " barman locally)",
        id="ssh-key-without-ssh",
    ),
    pytest.param(
        NODE + '[[servers]]\nname = "pg"\nconninfo = "host=pg user=bmuser password=secret"\n',
        ":6: servers[1].conninfo: conninfo must not contain a password; put it in ~/.pgpass"
        " (or passfile=…) instead",
        id="conninfo-password-keyword",
    ),
    pytest.param(
        NODE + '[[servers]]\nname = "pg"\nconninfo = "host=pg password = \'a b\'"\n',
        ":6: servers[1].conninfo: conninfo must not contain a password; put it in ~/.pgpass"
        " (or passfile=…) instead",
        id="conninfo-password-spaced-quoted",
    ),
    pytest.param(
        NODE + '[[servers]]\nname = "pg"\nconninfo = "postgresql://bmuser:secret@pg/postgres"\n',
        ":6: servers[1].conninfo: conninfo must not contain a password; put it in ~/.pgpass"
        " (or passfile=…) instead",
        id="conninfo-password-in-uri",
    ),
    pytest.param(
        NODE + '[[servers]]\nname = "pg"\nconninfo = "postgres://pg/db?user=u&password=x"\n',
        ":6: servers[1].conninfo: conninfo must not contain a password; put it in ~/.pgpass"
        " (or passfile=…) instead",
        id="conninfo-password-in-uri-query",
    ),
    pytest.param(
        NODE + '[[servers]]\nname = "pg"\nconninfo = "postgresql://[::1/db"\n',
        ":6: servers[1].conninfo: cannot parse conninfo URI: Invalid IPv6 URL",
        id="conninfo-bad-uri",
    ),
    pytest.param(
        NODE + '[[servers]]\nname = "pg"\nconninfo = "host=pg user"\n',
        ":6: servers[1].conninfo: cannot parse conninfo: missing '=' after 'user'",
        id="conninfo-unparsable",
    ),
    pytest.param(
        NODE + '[[servers]]\nname = "pg"\nnodes = ["bserver", "geobserver"]\n',
        ":6: servers[1].nodes: unknown node 'geobserver' (nodes: bserver)",
        id="server-unknown-node",
    ),
    pytest.param(
        "[console]\ntheme = 'dark'\n",
        ": nodes: no nodes: add a [[nodes]] table for each Barman host",
        id="no-nodes",
    ),
    pytest.param(
        '[nodes]\nname = "b"\n',
        ":1: nodes: expected an array of tables ([[nodes]]), got a table",
        id="nodes-not-an-array",
    ),
    pytest.param(
        '[console]\ntheme = "x"\nnodes = [\n  {name = "a"},\n  {name = "b", ssh = "x y"},\n]\n',
        ":3: console.nodes: unknown key 'nodes'",
        id="nodes-key-under-console",
    ),
    pytest.param(
        'nodes = [\n  {name = "a"},\n  {name = "b", ssh = "x y"},\n]\n',
        ":1: nodes[2].ssh: cannot parse ssh = 'x y': expected [user@]host[:port]",
        id="inline-array-falls-back-to-its-key-line",
    ),
    pytest.param(
        '[[nodes]]\nname = "a"\n[[servers]]\nname = "pg"\nverify_sql = """\n[[nodes]]\nx = 1\n"""\n'
        '[[nodes]]\nname = "a"\n',
        ":10: nodes[2].name: duplicate node name 'a' (also nodes[1])",
        id="header-inside-multiline-string-is-not-counted",
    ),
    pytest.param(
        "[console]\nrefresh_interval = " + "9" * 5000 + "\n",
        ": TOML syntax error: a number is too long",
        id="toml-integer-too-long",
    ),
    pytest.param(
        "[console]\nrefresh_interval = \n",
        ":2: TOML syntax error: Invalid value",
        id="toml-syntax-error",
    ),
    pytest.param(
        '[console]\ntheme = "x"\nreadonly = [true,\n',
        ":3: TOML syntax error: Invalid value",
        id="toml-syntax-error-at-end",
    ),
    pytest.param(
        b'[console]\ntheme = "caf\xe9"\n' + NODE.encode(),
        ":2: not valid UTF-8 (byte 0xe9); save the file as UTF-8",
        id="not-utf8",
    ),
]


@pytest.mark.parametrize(("text", "expected"), ERRORS)
def test_error_names_file_line_and_key(tmp_path: Path, text: str | bytes, expected: str) -> None:
    assert error_of(tmp_path, text) == expected


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"^.*nope\.toml: config file not found$"):
        load_config(path)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value) == f"{tmp_path}: is a directory, not a config file"


def test_unreadable_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    path = blocker / "drconsole.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: cannot read config file: Not a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, NODE)
    path.chmod(0)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: cannot read config file: Permission denied"


def test_parse_without_a_file_names_the_text() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("[console]\nthem = 1\n" + NODE, None)
    assert str(info.value) == (
        "<config>:2: console.them: unknown key 'them' (did you mean 'theme'?)"
    )


# --- what good files turn into -------------------------------------------------------------------


def test_reference_deployment_sample() -> None:
    config = load_config(SAMPLES / "reference-deployment.toml")
    bserver, geo = config.nodes
    assert (bserver.name, bserver.role, bserver.site) == ("bserver", NodeRole.PRIMARY, "Site-X")
    assert bserver.ssh == SshSpec(user="bmuser", host="bserver")
    assert (geo.name, geo.role, geo.site) == ("geobserver", NodeRole.PASSIVE, "Site-Y")
    assert geo.ssh == SshSpec(user="bmuser", host="geobserver")
    assert geo.primary == "bserver"
    server = config.server("pgserver")
    assert server is not None
    assert server.conninfo == "host=pgserver port=5432 user=bmuser dbname=postgres"
    assert config.console.thresholds == Thresholds()
    assert config.source == SAMPLES / "reference-deployment.toml"


def test_single_host_sample() -> None:
    config = load_config(SAMPLES / "single-host.toml")
    assert [(n.name, n.role, n.ssh) for n in config.nodes] == [("local", NodeRole.PRIMARY, None)]


def test_two_site_fleet_sample() -> None:
    config = load_config(SAMPLES / "two-site-fleet.toml")
    roles = {n.name: (n.site, n.role, n.primary) for n in config.nodes}
    assert roles == {
        "barman-par": ("Paris", NodeRole.PRIMARY, None),
        "geo-par": ("Paris", NodeRole.PASSIVE, "barman-fra"),
        "barman-fra": ("Frankfurt", NodeRole.PRIMARY, None),
        "geo-fra": ("Frankfurt", NodeRole.PASSIVE, "barman-par"),
    }
    assert config.node("geo-par").ssh == SshSpec(
        user="barman",
        host="geo-par.example.net",
        port=2222,
        key_file=Path("~/.ssh/id_ed25519_fleet").expanduser(),
        known_hosts=Path("~/.ssh/known_hosts_fleet").expanduser(),
    )
    fra_ssh = config.node("barman-fra").ssh
    assert fra_ssh is not None
    assert (fra_ssh.host, fra_ssh.port) == ("2001:db8:f0::10", 22)
    orders = config.thresholds_for("orders")
    assert (orders.wal_max_age, orders.stream_lag_bytes_critical) == (300, 2 * 1024**3)
    assert orders.geo_lag_segments == 8  # inherited from [console.thresholds]
    assert config.thresholds_for("inventory").backup_max_age == 8 * 86400
    assert config.thresholds_for("unknown") == config.console.thresholds
    assert config.console.readonly is True


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, b"\xef\xbb\xbf" + NODE.encode()))
    assert config.nodes[0].name == "bserver"


def test_passive_node_defaults_to_the_only_primary(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, TWO_NODES))
    assert config.node("geo").primary == "bserver"


def test_units_and_merging(tmp_path: Path) -> None:
    text = (
        '[console.thresholds]\nwal_max_age = "90s"\nwal_max_age_critical = 7200\n'
        'stream_lag_bytes = "512kB"\nstream_lag_bytes_critical = "1.5GiB"\n'
        'backup_max_age_critical = "7d"\n\n'
        + NODE
        + '\n[[servers]]\nname = "pg"\n[servers.thresholds]\nready_wal_count = 20\n'
    )
    config = load_config(write(tmp_path, text))
    t = config.console.thresholds
    assert (t.wal_max_age, t.wal_max_age_critical, t.backup_max_age_critical) == (
        90,
        7200,
        7 * 86400,
    )
    assert (t.stream_lag_bytes, t.stream_lag_bytes_critical) == (512 * 1024, 3 * 1024**3 // 2)
    server = config.thresholds_for("pg")
    assert server == dataclasses.replace(t, ready_wal_count=20)


def test_paths_expand_home_and_resolve_next_to_the_file(tmp_path: Path) -> None:
    text = NODE + 'ssh_key = "keys/id_barman"\nknown_hosts = "~/kh"\nssh_config = "/etc/ssh/x"\n'
    ssh = load_config(write(tmp_path, text)).nodes[0].ssh
    assert ssh is not None
    assert ssh.key_file == tmp_path / "keys" / "id_barman"
    assert ssh.known_hosts == Path.home() / "kh"
    assert ssh.config_file == Path("/etc/ssh/x")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("bserver", SshSpec(None, "bserver")),
        ("bmuser@127.0.0.2:2222", SshSpec("bmuser", "127.0.0.2", 2222)),
        ("bmuser@[::1]", SshSpec("bmuser", "::1")),
        ("[fe80::1]:22", SshSpec(None, "fe80::1", 22)),
    ],
)
def test_ssh_specs(spec: str, expected: SshSpec) -> None:
    config = parse_config(f'[[nodes]]\nname = "b"\nssh = "{spec}"\n', None)
    assert config.nodes[0].ssh == expected


def test_objects_are_frozen(tmp_path: Path) -> None:
    config = load_config(SAMPLES / "two-site-fleet.toml")
    assert isinstance(config.nodes, tuple)
    assert isinstance(config.servers[0].nodes, tuple)
    assert isinstance(config.node("geo-fra").servers, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.nodes[0].name = "x"  # type: ignore[misc]


# --- lookup order and warnings -------------------------------------------------------------------


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    cwd = tmp_path / "cwd"
    xdg = tmp_path / "xdg"
    home = tmp_path / "home"
    for d in (cwd, xdg / "drconsole", home / ".config" / "drconsole"):
        d.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("DRCONSOLE_CONFIG", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return {
        "local": cwd / "drconsole.toml",
        "xdg": xdg / "drconsole" / "config.toml",
        "home": home / ".config" / "drconsole" / "config.toml",
        "xdg_dir": xdg,
    }


def test_lookup_order(places: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_config(None) is None
    places["home"].write_text(NODE)
    assert find_config(None) == places["home"]
    monkeypatch.setenv("XDG_CONFIG_HOME", str(places["xdg_dir"]))
    assert find_config(None) is None  # XDG set: ~/.config is no longer looked at
    places["xdg"].write_text(NODE)
    assert find_config(None) == places["xdg"]
    places["local"].write_text(NODE)
    assert find_config(None) == Path("drconsole.toml")
    monkeypatch.setenv("DRCONSOLE_CONFIG", "/env/given.toml")
    assert find_config(None) == Path("/env/given.toml")
    assert find_config("~/explicit.toml") == Path.home() / "explicit.toml"


def test_relative_xdg_is_ignored(places: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    places["home"].write_text(NODE)
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    assert find_config(None) == places["home"]


def test_env_path_is_used_even_if_missing(
    places: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    places["local"].write_text(NODE)
    monkeypatch.setenv("DRCONSOLE_CONFIG", "/nowhere/drconsole.toml")
    path = find_config(None)
    assert path == Path("/nowhere/drconsole.toml")
    with pytest.raises(ConfigError, match=r"^/nowhere/drconsole\.toml: config file not found$"):
        load_config(path)


def test_permission_warnings(tmp_path: Path) -> None:
    path = write(tmp_path, NODE)
    path.chmod(0o600)
    assert config_warnings(path) == []
    path.chmod(0o644)
    assert config_warnings(path) == [f"{path} is readable by other users (mode 0644); chmod 600 it"]
    path.chmod(0o640)
    assert config_warnings(path) == [f"{path} is readable by other users (mode 0640); chmod 600 it"]
    path.chmod(0o666)
    assert config_warnings(path) == [f"{path} is writable by other users (mode 0666); chmod 600 it"]
    assert config_warnings(tmp_path / "missing.toml") == []


# --- dump round trip (hypothesis) ----------------------------------------------------------------

NAMES = st.text(string.ascii_letters + string.digits + "_.-", min_size=1, max_size=12)
TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20).filter(
    str.strip
)
SECONDS = st.one_of(
    st.integers(0, 10**7).map(float), st.floats(0, 1e9, allow_nan=False, allow_infinity=False)
)
ABSOLUTE = st.from_regex(r"/[A-Za-z0-9_./+-]{0,20}", fullmatch=True)  # values for command lines
POSITIVE = st.floats(1e-3, 1e6, allow_nan=False, allow_infinity=False)
SIZES = st.one_of(st.integers(0, 2**40), st.integers(0, 1024).map(lambda n: n * 1024**2))


@st.composite
def thresholds(draw: st.DrawFn) -> Thresholds:
    values: dict[str, Any] = {}
    for warning, kind in (
        ("backup_max_age", SECONDS),
        ("wal_max_age", SECONDS),
        ("geo_lag_age", SECONDS),
        ("stream_lag_bytes", SIZES),
        ("geo_lag_segments", st.integers(0, 10**6)),
        ("ready_wal_count", st.integers(0, 10**6)),
    ):
        low, high = sorted(draw(st.lists(kind, min_size=2, max_size=2)))
        values[warning], values[f"{warning}_critical"] = low, high
    values["archiver_failures"] = draw(st.integers(1, 1000))
    return Thresholds(**values)


@st.composite
def configs(draw: st.DrawFn) -> Config:
    names = draw(st.lists(NAMES, min_size=1, max_size=4, unique=True))
    roles = [NodeRole.PRIMARY] + [draw(st.sampled_from(list(NodeRole))) for _ in names[1:]]
    primaries = [n for n, r in zip(names, roles, strict=True) if r is NodeRole.PRIMARY]
    nodes = []
    for name, role in zip(names, roles, strict=True):
        ssh = draw(
            st.none()
            | st.builds(
                SshSpec,
                user=st.none() | st.from_regex(r"[a-z_][a-z0-9_.-]{0,8}", fullmatch=True),
                host=st.sampled_from(["bserver", "127.0.0.2", "::1", "geo.example.net"]),
                port=st.none() | st.integers(1, 65535),
                key_file=st.none() | st.just(Path("/k/id")),
                known_hosts=st.none() | st.just(Path("/k/known")),
                config_file=st.none() | st.just(Path("/k/config")),
            )
        )
        nodes.append(
            NodeConfig(
                name=name,
                role=role,
                site=draw(st.none() | TEXT),
                ssh=ssh,
                primary=draw(st.sampled_from(primaries)) if role is NodeRole.PASSIVE else None,
                barman=draw(st.just("barman") | ABSOLUTE),
                barman_config=draw(st.none() | ABSOLUTE),
                job_dir=draw(st.just("~/.drconsole/jobs") | ABSOLUTE),
                servers=tuple(draw(st.lists(NAMES.filter(_server_name), unique=True, max_size=3))),
                command_timeout=draw(st.none() | POSITIVE),
            )
        )
    console = ConsoleConfig(
        refresh_interval=draw(POSITIVE),
        slow_refresh_interval=draw(POSITIVE),
        theme=draw(TEXT),
        readonly=draw(st.booleans()),
        command_timeout=draw(POSITIVE),
        connect_timeout=draw(POSITIVE),
        journal_dir="/" + draw(TEXT).lstrip("~"),
        thresholds=draw(thresholds()),
    )
    server_names = draw(st.lists(NAMES.filter(_server_name), unique=True, max_size=3))
    servers = tuple(
        ServerConfig(
            name=name,
            conninfo=draw(
                st.none()
                | st.sampled_from(["host=pg user=bmuser dbname=postgres", "postgresql://u@h/db"])
            ),
            nodes=tuple(draw(st.lists(st.sampled_from(names), unique=True, max_size=2))),
            verify_sql=draw(st.none() | TEXT),
            thresholds=draw(st.none() | thresholds()),
        )
        for name in server_names
    )
    return Config(console=console, nodes=tuple(nodes), servers=servers)


def _server_name(name: str) -> bool:
    return name != "all" and not name.startswith("-")


@settings(max_examples=150, deadline=None)
@given(configs())
def test_dump_round_trips(config: Config) -> None:
    assert parse_config(dump_config(config), None) == config


def test_dump_of_a_sample_is_readable_toml() -> None:
    config = load_config(SAMPLES / "reference-deployment.toml")
    text = dump_config(config)
    assert '[[nodes]]\nname = "geobserver"\nrole = "passive"' in text
    assert 'backup_max_age = "26h"' in text
    assert parse_config(text, None) == dataclasses.replace(config, source=None)


# --- malformed shapes never escape as anything but ConfigError ------------------------------------

TOML_SCALARS = (
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["15m", "64MiB", "primary", "passive", "bserver", "bmuser@[::1]:22", ""])
    | st.datetimes()
    | st.dates()
    | st.times()
)
TOML_VALUES = st.recursive(
    TOML_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _valid_document() -> dict[str, Any]:
    return {
        "console": {"refresh_interval": 5, "thresholds": {"wal_max_age": "15m"}},
        "nodes": [
            {"name": "bserver", "ssh": "bmuser@bserver", "site": "X"},
            {"name": "geo", "role": "passive", "primary": "bserver", "ssh": "bmuser@geo"},
        ],
        "servers": [
            {"name": "pg", "conninfo": "host=pg", "nodes": ["bserver"], "thresholds": {}},
        ],
    }


def _tables(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        doc,
        doc["console"],
        doc["console"]["thresholds"],
        *doc["nodes"],
        *doc["servers"],
        doc["servers"][0]["thresholds"],
    ]


KNOWN_KEYS = sorted(
    {key for table in _tables(_valid_document()) for key in table}
    | {"primary", "ssh_port", "ssh_key", "role", "stream_lag_bytes", "archiver_failures"}
)


def _parses_or_config_error(parse: Callable[[], Config]) -> None:
    try:
        assert isinstance(parse(), Config)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(
            st.integers(0, 7),
            st.sampled_from(KNOWN_KEYS) | st.text(max_size=10),
            st.none() | TOML_VALUES,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_malformed_shapes_give_config_errors(edits: list[tuple[int, str, Any]]) -> None:
    doc = _valid_document()
    tables = _tables(doc)  # an edit may detach a table; editing it then changes nothing
    for where, key, value in edits:
        table = tables[where % len(tables)]
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    text = tomli_w.dumps(doc)
    _parses_or_config_error(lambda: parse_config(text, Path("fuzz.toml")))


@settings(max_examples=200, deadline=None)
@given(
    position=st.integers(0, 10**4),
    junk=st.text(alphabet="[]{}\"'=#.\n ,\\abc1", max_size=8),
)
def test_mangled_sample_text_gives_config_errors(position: int, junk: str) -> None:
    text = (SAMPLES / "two-site-fleet.toml").read_text()
    cut = position % (len(text) + 1)
    mangled = text[:cut] + junk + text[cut:]
    _parses_or_config_error(lambda: parse_config(mangled, Path("fuzz.toml")))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("~nosuchuser-drconsole/j", "there is no user 'nosuchuser-drconsole'"),
        ("journal", "must be an absolute path or start with ~/"),
    ],
)
def test_a_journal_dir_that_would_land_somewhere_unexpected_is_refused(
    value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_config(f'[console]\njournal_dir = "{value}"\n', Path("c.toml"))
    assert str(info.value).startswith("c.toml:2: console.journal_dir: ")


@pytest.mark.parametrize("depth", [1_000, 5_000, 50_000])
def test_a_config_nested_deeply_is_one_clear_error(depth: int) -> None:
    for text in (f"x = {'[' * depth}{']' * depth}\n", f"x = {'{a = ' * depth}1{'}' * depth}\n"):
        with pytest.raises(ConfigError, match="nested too deeply"):
            parse_config(text, Path("c.toml"))


def test_a_config_that_is_not_a_regular_file_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)  # reading it would block forever
    for path in (fifo, Path("/dev/zero")):
        with pytest.raises(ConfigError, match="is not a regular file"):
            load_config(path)
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (2 << 20))
    with pytest.raises(ConfigError, match="more than a config file can be"):
        load_config(big)
