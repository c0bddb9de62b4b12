"""The node's barman.log, filtered to one server: where it is, and the command that follows it.

Barman names its log only in its global config; `barman diagnose` (about 2 s) is the one command
that reports it, so callers look it up once per node and keep it.
"""

from __future__ import annotations

from typing import Any

from dr_console.core.barman import BarmanClient
from dr_console.core.validation import check_path, check_server_name

TAIL_LINES = 200

# $1 log file, $2 server name: the last lines, then new ones as they are written (and across
# Barman's log rotation), keeping only those that name the server.
FOLLOWER = 'tail -n "$3" -F -- "$1" 2>/dev/null | grep --line-buffered -F -e "$2"'


class NoBarmanLog(Exception):
    """Barman does not say where its log is (log_file unset): the message is for the user."""


def log_file_of(diagnose: dict[str, Any]) -> str:
    glob = diagnose.get("global")
    config = glob.get("config") if isinstance(glob, dict) else None
    path = config.get("log_file") if isinstance(config, dict) else None
    if not isinstance(path, str) or not path:
        raise NoBarmanLog("barman diagnose names no log_file: Barman logs nowhere on this node")
    return check_path(path)


async def barman_log_path(client: BarmanClient) -> str:
    return log_file_of(await client.diagnose())


def follow_argv(path: str, server: str, lines: int = TAIL_LINES) -> list[str]:
    return [
        "sh",
        "-c",
        FOLLOWER,
        "drconsole-barman-log",
        check_path(path),
        check_server_name(server),
        str(max(0, int(lines))),
    ]
