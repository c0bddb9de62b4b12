"""Cheap facts read straight from a Barman node's files, without starting Barman.

One `sh` process reads, for every server, the last line of its xlog.db, the WAL files waiting in
incoming/ and streaming/ (how many, and when the newest arrived), errors/, the passive node's
sync markers and a signature of the backup metadata (so the catalogue is re-read only when it
changed). The script is a constant: the directories arrive as positional parameters and are
never interpolated into shell text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dr_console.core.barman_versions import Capabilities
from dr_console.core.validation import check_path, check_server_name
from dr_console.core.wal import is_wal_segment
from dr_console.models import BarmanProcess

FIELDS_PER_SERVER = 9

# $1.. come in groups of FIELDS_PER_SERVER:
#   server xlogdb_file incoming_dir streaming_dir errors_dir backup_dir wals_dir passive lockdir
# (passive is 1 or 0)
# Running Barman processes are found the way `barman list-processes` finds them (a held flock on
# .<server>-<task>.lock), but read from the kernel's lock table instead of by taking the lock,
# so polling can never make a Barman command fail with "already running".
# Every supported Barman (3.4 to 3.19) names its task locks the same way, so this one reading
# serves all of them, including those without `list-processes` (before 3.14).
_HELD_LOCKS = r"""
  for lock in "$lockdir/.$server-"*.lock; do
    [ -e "$lock" ] || continue
    inode=$(stat -c %i "$lock" 2>/dev/null) || continue
    holder=$(printf '%s\n' "$locks" | awk -v ino="$inode" \
      '$2 == "FLOCK" { n = split($6, f, ":"); if (f[n] == ino) { print $5; exit } }')
    [ -n "$holder" ] && printf 'K %s %s\n' "${lock##*/}" "$holder"
  done
"""
SCRIPT = r"""
printf 'N %s\n' "$(date +%s)"
locks=$(cat /proc/locks 2>/dev/null)
while [ "$#" -ge 9 ]; do
  server=$1 xlogdb=$2 incoming=$3 streaming=$4 errors=$5 backupdir=$6 walsdir=$7 passive=$8
  lockdir=$9
  shift 9
  printf 'S %s\n' "$server"
""" + _HELD_LOCKS + r"""
  if [ -r "$xlogdb" ]; then
    tail -n 8 "$xlogdb" | while IFS= read -r line; do printf 'X %s\n' "$line"; done
  else
    printf 'X\n'
  fi
  if [ -d "$incoming" ]; then
    printf 'I %s\n' "$(find "$incoming" -maxdepth 1 -type f | wc -l)"
    printf 'J %s\n' "$(find "$incoming" -maxdepth 1 -type f -printf '%T@\n' | sort -n | tail -n 1)"
  fi
  if [ -d "$streaming" ]; then
    printf 'T %s\n' "$(find "$streaming" -maxdepth 1 -type f ! -name '*.partial' | wc -l)"
    printf 'U %s\n' "$(find "$streaming" -maxdepth 1 -type f ! -name '*.partial' \
                       -printf '%T@\n' | sort -n | tail -n 1)"
    partial=$(find "$streaming" -maxdepth 1 -type f -name '*.partial' -printf '%T@ %f\n' \
              | sort -n | tail -n 1)
    [ -n "$partial" ] && printf 'P %s\n' "$partial"
  fi
  if [ -d "$errors" ]; then
    printf 'E %s\n' "$(find "$errors" -maxdepth 1 -type f | wc -l)"
  fi
  printf 'M %s\n' "$(ls -lA --time-style=+%s "$backupdir/meta" "$backupdir/base" 2>/dev/null \
                     | cksum | cut -d' ' -f1)"
  if [ "$passive" = 1 ]; then
    [ -r "$walsdir/sync-wals.info" ] && printf 'W %s\n' "$(head -n 1 "$walsdir/sync-wals.info")"
    [ -e "$backupdir/primary.info" ] && printf 'Y %s\n' "$(stat -c %Y "$backupdir/primary.info")"
  fi
done
"""
# $1 server, $2 lock directory: only the running tasks (S and K lines).
TASKS_SCRIPT = r"""
locks=$(cat /proc/locks 2>/dev/null)
server=$1 lockdir=$2
printf 'S %s\n' "$server"
""" + _HELD_LOCKS


def lock_directory(show_servers: dict[str, Any]) -> str:
    """Where a server's task locks are: barman_lock_directory, which defaults to barman_home,
    the parent of each server's directory."""
    configured = show_servers.get("barman_lock_directory")
    if configured not in (None, ""):
        return str(configured)
    return str(show_servers.get("backup_directory") or "").rstrip("/").rpartition("/")[0]


def tasks_argv(server: str, lock_dir: str) -> list[str]:
    return ["sh", "-c", TASKS_SCRIPT, "drconsole-tasks", check_server_name(server),
            check_path(lock_dir)]


@dataclass(frozen=True)
class ServerLayout:
    """Where Barman keeps one server's files on a node, and the settings that shape its panes."""

    server: str
    wals_directory: str
    incoming_directory: str
    streaming_directory: str
    errors_directory: str
    xlogdb_file: str
    backup_directory: str
    passive: bool
    archiver: bool
    streaming_archiver: bool
    slot_name: str | None
    receiver_name: str
    segment_size: int
    primary_ssh_command: str | None
    description: str | None
    lock_directory: str
    active: bool
    disabled: bool

    @classmethod
    def from_show_servers(
        cls, server: str, data: dict[str, Any], capabilities: Capabilities
    ) -> ServerLayout:
        def text(key: str, default: str = "") -> str:
            value = data.get(key)
            return str(value) if value not in (None, "") else default

        def flag(key: str) -> bool:
            value = data.get(key)
            if isinstance(value, bool):
                return value
            return str(value).strip().lower() in {"true", "on", "1", "yes"}

        backup_dir = text("backup_directory")
        wals = text("wals_directory", f"{backup_dir}/wals")
        try:
            segment_size = int(data.get("xlog_segment_size") or 16 * 1024 * 1024)
        except (TypeError, ValueError):
            segment_size = 16 * 1024 * 1024
        return cls(
            server=server,
            wals_directory=wals,
            incoming_directory=text("incoming_wals_directory", f"{backup_dir}/incoming"),
            streaming_directory=text("streaming_wals_directory", f"{backup_dir}/streaming"),
            errors_directory=text("errors_directory", f"{backup_dir}/errors"),
            xlogdb_file=capabilities.xlogdb_file(server, wals, text("xlogdb_directory") or None),
            backup_directory=backup_dir,
            passive=flag("passive_node"),
            archiver=flag("archiver"),
            streaming_archiver=flag("streaming_archiver"),
            slot_name=text("slot_name") or None,
            receiver_name=text("streaming_archiver_name", "barman_receive_wal"),
            segment_size=segment_size,
            primary_ssh_command=text("primary_ssh_command") or None,
            description=text("description") or None,
            lock_directory=lock_directory(data),
            active=flag("active") if "active" in data else True,
            disabled=flag("disabled"),
        )


@dataclass(frozen=True)
class WalEntry:
    name: str
    size: int | None
    time: datetime | None


@dataclass(frozen=True)
class ServerFileFacts:
    server: str
    last_wal: WalEntry | None = None
    incoming_count: int | None = None
    streaming_count: int | None = None
    partial_name: str | None = None
    partial_mtime: datetime | None = None
    errors_count: int | None = None
    # the newest complete WAL file waiting in incoming/ and streaming/ (already on the node)
    incoming_newest: datetime | None = None
    streaming_newest: datetime | None = None
    meta_signature: str | None = None
    sync_wals_last: str | None = None  # passive: last WAL name synced from the primary
    sync_wals_position: int | None = None  # passive: where in the primary's xlog.db that was
    primary_info_mtime: datetime | None = None  # passive: last successful contact with primary
    processes: tuple[BarmanProcess, ...] = ()  # as `barman list-processes` would list them


@dataclass(frozen=True)
class NodeFileFacts:
    node_time: datetime | None
    servers: dict[str, ServerFileFacts]


def script_argv(layouts: Sequence[ServerLayout]) -> list[str]:
    argv = ["sh", "-c", SCRIPT, "drconsole-facts"]
    for layout in layouts:
        argv += [
            check_server_name(layout.server),
            check_path(layout.xlogdb_file),
            check_path(layout.incoming_directory),
            check_path(layout.streaming_directory),
            check_path(layout.errors_directory),
            check_path(layout.backup_directory),
            check_path(layout.wals_directory),
            "1" if layout.passive else "0",
            check_path(layout.lock_directory),
        ]
    return argv


def _epoch(text: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(text), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def parse_xlogdb_line(line: str) -> WalEntry | None:
    """`name<TAB>size<TAB>epoch<TAB>compression<TAB>encryption` (FINDINGS §7)."""
    parts = line.strip().split("\t")
    if not parts or not parts[0]:
        return None
    size = _int(parts[1]) if len(parts) > 1 else None
    when = _epoch(parts[2]) if len(parts) > 2 else None
    return WalEntry(parts[0], size, when)


_SIMPLE_TASKS = ("receive-wal", "backup", "cron", "archive-wal", "sync-wal")


def lock_task(server: str, lock_name: str) -> str | None:
    """`.pgserver-receive-wal.lock` -> "receive-wal"; locks that are not tasks -> None.

    The task names are those of Barman's ProcessManager; `.<server>-<backup_id>.lock` (a backup
    being worked on) and `.<server>-xlogdb.lock` are not processes.
    """
    prefix = f".{server}-"
    if not (lock_name.startswith(prefix) and lock_name.endswith(".lock")):
        return None
    rest = lock_name[len(prefix) : -len(".lock")]
    if rest in _SIMPLE_TASKS:
        return rest
    if rest.endswith("-sync-backup"):
        return "sync-backup"
    return None


def parse_output(text: str) -> NodeFileFacts:
    node_time: datetime | None = None
    servers: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for raw in text.splitlines():
        tag, _, value = raw.partition(" ")
        if tag == "N":
            node_time = _epoch(value)
        elif tag == "S":
            current = servers.setdefault(value, {"server": value})
        elif current is None:
            continue
        elif tag == "X":
            entry = parse_xlogdb_line(value)
            if entry is None:
                continue
            # The last line may be a .backup or .history file: the newest *segment* is what lag
            # and "last archived WAL" mean, but the newest time of any line is archive progress.
            previous = current.get("last_wal")
            newest_time = max(
                (t for t in (entry.time, previous.time if previous else None) if t is not None),
                default=None,
            )
            if is_wal_segment(entry.name) or previous is None or not is_wal_segment(previous.name):
                current["last_wal"] = WalEntry(entry.name, entry.size, newest_time)
            else:
                current["last_wal"] = WalEntry(previous.name, previous.size, newest_time)
        elif tag == "I":
            current["incoming_count"] = _int(value)
        elif tag == "T":
            current["streaming_count"] = _int(value)
        elif tag == "J" and value.strip():
            current["incoming_newest"] = _epoch(value)
        elif tag == "U" and value.strip():
            current["streaming_newest"] = _epoch(value)
        elif tag == "P":
            mtime, _, name = value.partition(" ")
            current["partial_mtime"] = _epoch(mtime)
            current["partial_name"] = name or None
        elif tag == "E":
            current["errors_count"] = _int(value)
        elif tag == "M":
            current["meta_signature"] = value.strip() or None
        elif tag == "W":
            name, _, position = value.partition("\t")
            current["sync_wals_last"] = name.strip() or None
            current["sync_wals_position"] = _int(position) if position.strip() else None
        elif tag == "Y":
            current["primary_info_mtime"] = _epoch(value)
        elif tag == "K":
            lock_name, _, pid = value.rpartition(" ")
            task = lock_task(current["server"], lock_name)
            pid_value = _int(pid)
            if task is not None and pid_value is not None:
                current["processes"] = (
                    *current.get("processes", ()),
                    BarmanProcess(task, pid_value),
                )
    return NodeFileFacts(
        node_time=node_time,
        servers={name: ServerFileFacts(**fields) for name, fields in servers.items()},
    )
