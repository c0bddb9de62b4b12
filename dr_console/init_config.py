"""`drconsole init`: ask live Barman nodes what they manage and write a valid config.

    drconsole init --node bserver=bmuser@bserver --node geobserver=bmuser@geobserver:22 \
                   [--passive geobserver] [--site bserver=Site-X] [-o FILE] [--force]

Each node's Barman is asked for its servers (`show-servers all`): which are passive copies, and
their conninfo with any password removed. A node whose servers are all passive becomes a passive
node; its primary is the node its `primary_ssh_command` points at when that is one of the given
nodes. The file is written with tomli-w (mode 0600) and read back to prove it loads.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dr_console.config import (
    Config,
    ConfigError,
    ConsoleConfig,
    NodeConfig,
    ServerConfig,
    SshSpec,
    dump_config,
    parse_config,
)
from dr_console.core.barman import BarmanClient
from dr_console.core.barman_errors import BarmanError
from dr_console.core.transport import TransportError, open_transport
from dr_console.models import NodeRole

_NODE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_PASSWORD = re.compile(r"\s*\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


class InitError(Exception):
    pass


@dataclass(frozen=True)
class NodeSpec:
    name: str
    ssh: SshSpec | None


def parse_node(text: str, key_file: Path | None, known_hosts: Path | None) -> NodeSpec:
    name, sep, target = text.partition("=")
    if not sep or not name or not target:
        raise InitError(f"--node {text!r}: expected NAME=[USER@]HOST[:PORT] or NAME=local")
    if not _NODE_NAME.match(name):
        raise InitError(f"--node {text!r}: node names may use letters, digits, '_', '.', '-'")
    if target == "local":
        return NodeSpec(name, None)
    user, _, hostport = target.rpartition("@")
    host, port = hostport, None
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        if rest.startswith(":"):
            port = rest[1:]
    elif hostport.count(":") == 1:
        host, port = hostport.split(":")
    if not host or not re.match(r"^[A-Za-z0-9_.:-]+$", host):
        raise InitError(f"--node {text!r}: {host!r} is not a host name or address")
    if user and not re.match(r"^[A-Za-z0-9_.-]+$", user):
        raise InitError(f"--node {text!r}: {user!r} is not a user name")
    port_number = None
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise InitError(f"--node {text!r}: port {port!r} is not a port number")
        port_number = int(port)
    return NodeSpec(
        name, SshSpec(user or None, host, port_number, key_file=key_file, known_hosts=known_hosts)
    )


def strip_password(conninfo: str) -> str:
    """Remove a password from a keyword/value conninfo; passwords belong in .pgpass."""
    return " ".join(_PASSWORD.sub(" ", conninfo).split())


async def _discover(node: NodeConfig, timeout: float) -> dict[str, dict[str, Any]]:
    transport = open_transport(node, connect_timeout=min(timeout, 15.0))
    try:
        client = BarmanClient(transport, barman=node.barman, timeout=timeout)
        return await client.show_servers(None)
    finally:
        await transport.close()


def _ssh_host_of(command: str | None) -> str | None:
    """`ssh -p 22 bmuser@bserver` -> "bserver"."""
    if not command:
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    takes_value = set("bcDEeFIiJLlmOopQRSWw")
    skip = False
    for word in words[1:]:
        if skip:
            skip = False
            continue
        if word.startswith("-"):
            skip = len(word) == 2 and word[1] in takes_value
            continue
        return word.rpartition("@")[2]
    return None


def build_config(
    specs: Sequence[NodeSpec],
    discovered: dict[str, dict[str, dict[str, Any]]],
    passive: set[str],
    sites: dict[str, str],
) -> Config:
    roles: dict[str, NodeRole] = {}
    for spec in specs:
        servers = discovered[spec.name]
        all_passive = bool(servers) and all(
            str(s.get("passive_node")).lower() == "true" for s in servers.values()
        )
        roles[spec.name] = (
            NodeRole.PASSIVE if spec.name in passive or all_passive else NodeRole.PRIMARY
        )
    host_to_node = {s.ssh.host: s.name for s in specs if s.ssh is not None}
    nodes = []
    for spec in specs:
        primary = None
        if roles[spec.name] is NodeRole.PASSIVE:
            for data in discovered[spec.name].values():
                host = _ssh_host_of(data.get("primary_ssh_command"))
                if host in host_to_node and roles[host_to_node[host]] is NodeRole.PRIMARY:
                    primary = host_to_node[host]
                    break
            if primary is None:
                primaries = [s.name for s in specs if roles[s.name] is NodeRole.PRIMARY]
                if len(primaries) != 1:
                    raise InitError(
                        f"cannot tell which node passive node '{spec.name}' copies from; "
                        "give the primary node too (its primary_ssh_command host must match)"
                    )
                primary = primaries[0]
        nodes.append(
            NodeConfig(
                name=spec.name,
                role=roles[spec.name],
                site=sites.get(spec.name),
                ssh=spec.ssh,
                primary=primary,
            )
        )
    conninfos: dict[str, str] = {}
    for spec in specs:
        if roles[spec.name] is not NodeRole.PRIMARY:
            continue
        for server, data in discovered[spec.name].items():
            conninfo = data.get("conninfo")
            if isinstance(conninfo, str) and conninfo.strip():
                conninfos.setdefault(server, strip_password(conninfo))
    extras = tuple(
        ServerConfig(name=name, conninfo=conninfo) for name, conninfo in sorted(conninfos.items())
    )
    return Config(console=ConsoleConfig(), nodes=tuple(nodes), servers=extras)


def write_config(config: Config, path: Path, force: bool) -> Config:
    text = dump_config(config)
    loaded = parse_config(text, path)  # prove it loads before anything is written
    if path.exists() and not force:
        raise InitError(f"{path} exists; use --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(
            "# written by `drconsole init` from what the Barman nodes reported;\n"
            "# passwords never go here: use ~/.pgpass (or passfile=) for the conninfo roles\n"
        )
        out.write(text)
    os.chmod(path, 0o600)
    return loaded


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="drconsole init", description="Write a drconsole config from live Barman nodes."
    )
    parser.add_argument(
        "--node",
        action="append",
        required=True,
        metavar="NAME=[USER@]HOST[:PORT]",
        help="a Barman node (repeatable)",
    )
    parser.add_argument(
        "--passive",
        action="append",
        default=[],
        metavar="NAME",
        help="mark a node as passive (normally detected)",
    )
    parser.add_argument("--site", action="append", default=[], metavar="NODE=SITE")
    parser.add_argument("--ssh-key", type=Path, help="private key for every node")
    parser.add_argument("--known-hosts", type=Path, help="known_hosts file for every node")
    parser.add_argument("-o", "--output", type=Path, default=Path("drconsole.toml"))
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    parser.add_argument("--timeout", type=float, default=60.0)
    return parser


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    try:
        specs = [parse_node(t, args.ssh_key, args.known_hosts) for t in args.node]
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise InitError("each --node needs its own name")
        unknown = set(args.passive) - set(names)
        if unknown:
            raise InitError(f"--passive names unknown node(s): {', '.join(sorted(unknown))}")
        sites = {}
        for item in args.site:
            node, sep, site = item.partition("=")
            if not sep or node not in names:
                raise InitError(f"--site {item!r}: expected NODE=SITE for a given node")
            sites[node] = site
        if args.output.exists() and not args.force:
            raise InitError(f"{args.output} exists; use --force to overwrite it")
        discovered = asyncio.run(_discover_all(specs, args.timeout))
        config = build_config(specs, discovered, set(args.passive), sites)
        write_config(config, args.output, args.force)
    except (InitError, ConfigError) as exc:
        print(f"drconsole init: {exc}", file=sys.stderr)
        return 2
    for node in config.nodes:
        found = ", ".join(sorted(discovered[node.name])) or "no servers"
        print(f"{node.name} ({node.role.value}): {found}")
    print(f"wrote {args.output}")
    return 0


async def _discover_all(
    specs: Sequence[NodeSpec], timeout: float
) -> dict[str, dict[str, dict[str, Any]]]:
    async def one(spec: NodeSpec) -> tuple[str, dict[str, dict[str, Any]]]:
        node = NodeConfig(name=spec.name, role=NodeRole.PRIMARY, ssh=spec.ssh)
        try:
            return spec.name, await _discover(node, timeout)
        except (TransportError, BarmanError, OSError, TimeoutError) as exc:
            raise InitError(f"node {spec.name}: {exc}") from None

    return dict(await asyncio.gather(*(one(s) for s in specs)))
