"""Pre-flight checks on a recovery destination, run on the destination host through a Transport.

Never overwrite: the destination must be absent or an empty directory, with no postmaster.pid
and no running server, outside every PostgreSQL data directory and tablespace, with enough free
space for the backup (+ its WAL), and, for a drill, the port the restored server will use must
be free. Each failure is a typed refusal with a clear message.
"""

from __future__ import annotations

import contextlib
import enum
from dataclasses import dataclass, field

from dr_console.core.fmt import size as human_bytes
from dr_console.core.transport_base import Transport, TransportError

# $1 destination, $2 port or "". Prints "key<TAB>value" lines; values never reach a shell.
PREFLIGHT_SCRIPT = r"""
dest=$1
port=$2
if [ -e "$dest" ] || [ -L "$dest" ]; then
  if [ -d "$dest" ]; then
    printf 'exists\tdir\n'
    if ls -A -- "$dest" >/dev/null 2>&1; then
      printf 'entries\t%s\n' "$(ls -A -- "$dest" | wc -l)"
      printf 'sample\t%s\n' "$(ls -A -- "$dest" | head -n 3 | tr '\n' ' ')"
    else
      printf 'unreadable\t1\n'
    fi
  else
    printf 'exists\tother\n'
  fi
fi
if [ -f "$dest/postmaster.pid" ]; then
  pid=$(head -n 1 "$dest/postmaster.pid" 2>/dev/null)
  printf 'pidfile\t%s\n' "$pid"
  case $pid in
    ''|*[!0-9]*) ;;
    *) [ -d "/proc/$pid" ] && printf 'running\t1\n' ;;
  esac
fi
p=$dest
while [ ! -d "$p" ]; do p=$(dirname -- "$p"); done
printf 'parent\t%s\n' "$p"
# Inside a data directory or a tablespace (running or not), through symlinks too.
a=$(cd -P -- "$p" 2>/dev/null && pwd -P) || a=
while [ -n "$a" ]; do
  if [ -f "$a/PG_VERSION" ] && [ -d "$a/global" ]; then
    printf 'inside_data_dir\t%s\n' "$a"; break
  fi
  case ${a##*/} in PG_[0-9]*_[0-9]*) printf 'inside_tablespace\t%s\n' "$a"; break ;; esac
  [ "$a" = / ] && break
  a=$(dirname -- "$a")
done
if [ -e "$dest" ]; then w=$dest; else w=$p; fi
[ -w "$w" ] && printf 'writable\t1\n'
df -Pk -- "$p" 2>/dev/null | awk 'NR==2 {print "avail_kb\t" $4}'
if [ -n "$port" ]; then
  if command -v ss >/dev/null 2>&1; then
    printf 'port_checked\t1\n'
    ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && printf 'port_busy\ttcp\n'
    ss -Hlx 2>/dev/null | grep -q "\.s\.PGSQL\.$port[[:space:]]" && printf 'port_busy\tunix\n'
  fi
fi
exit 0
"""


class RefusalKind(enum.StrEnum):
    NOT_EMPTY = "not_empty"
    NOT_A_DIRECTORY = "not_a_directory"
    UNREADABLE = "unreadable"
    RUNNING_SERVER = "running_server"
    PID_FILE = "pid_file"
    NOT_WRITABLE = "not_writable"
    NO_SPACE = "no_space"
    PORT_BUSY = "port_busy"
    INSIDE_DATA_DIR = "inside_data_dir"


@dataclass(frozen=True)
class Refusal:
    kind: RefusalKind
    message: str


class PreflightRefused(Exception):
    """At least one pre-flight check refused the destination; `refusals` lists them all."""

    def __init__(self, refusals: list[Refusal]) -> None:
        super().__init__("; ".join(r.message for r in refusals))
        self.refusals = refusals

    @property
    def kinds(self) -> set[RefusalKind]:
        return {r.kind for r in self.refusals}


@dataclass(frozen=True)
class PreflightReport:
    where: str
    destination: str
    exists: bool
    free_bytes: int | None
    need_bytes: int | None
    refusals: list[Refusal] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refusals

    def raise_if_refused(self) -> None:
        if self.refusals:
            raise PreflightRefused(self.refusals)


def evaluate(
    facts: dict[str, list[str]],
    *,
    where: str,
    destination: str,
    need_bytes: int | None,
    port: int | None,
) -> PreflightReport:
    """Turn the script's facts into refusals (pure)."""

    def one(key: str) -> str | None:
        values = facts.get(key)
        return values[0] if values else None

    refusals: list[Refusal] = []
    warnings: list[str] = []
    place = f"{destination} on {where}"
    exists = one("exists")
    inside = one("inside_data_dir")
    tablespace = one("inside_tablespace")
    if inside or tablespace:
        what = (f"inside the PostgreSQL data directory {inside}" if inside
                else f"inside the PostgreSQL tablespace directory {tablespace}")
        refusals.append(
            Refusal(
                RefusalKind.INSIDE_DATA_DIR,
                f"{place} is {what}: recovering there would write into that cluster's files; "
                "choose a directory outside every data directory and tablespace",
            )
        )
    if exists == "other":
        refusals.append(
            Refusal(
                RefusalKind.NOT_A_DIRECTORY,
                f"{place} exists and is not a directory: never overwritten",
            )
        )
    elif exists == "dir":
        if one("unreadable"):
            refusals.append(
                Refusal(
                    RefusalKind.UNREADABLE,
                    f"{place} exists but cannot be listed: cannot prove it empty",
                )
            )
        elif (one("entries") or "0").strip() != "0":
            sample = (one("sample") or "").strip()
            refusals.append(
                Refusal(
                    RefusalKind.NOT_EMPTY,
                    f"{place} is not empty ({(one('entries') or '?').strip()} entries: {sample}): "
                    "a recovery never overwrites; choose an absent or empty directory",
                )
            )
    pidfile = one("pidfile")
    if pidfile is not None:
        if one("running"):
            refusals.append(
                Refusal(
                    RefusalKind.RUNNING_SERVER,
                    f"a PostgreSQL server is running in {place} (postmaster.pid, pid {pidfile}): "
                    "stop it first",
                )
            )
        else:
            refusals.append(
                Refusal(
                    RefusalKind.PID_FILE,
                    f"{place} holds a postmaster.pid (pid {pidfile or '?'}, not running): a data "
                    "directory was there; remove it deliberately first",
                )
            )
    if not one("writable"):
        target = destination if exists else f"{one('parent') or '?'} (to create {destination})"
        refusals.append(
            Refusal(
                RefusalKind.NOT_WRITABLE,
                f"{target} on {where} is not writable by the recovering user",
            )
        )
    avail = one("avail_kb")
    free = int(avail) * 1024 if avail and avail.isdigit() else None
    if need_bytes is not None and free is not None and free < need_bytes:
        refusals.append(
            Refusal(
                RefusalKind.NO_SPACE,
                f"not enough free space under {one('parent')} on {where}: "
                f"{human_bytes(free)} free, the backup and its WAL need {human_bytes(need_bytes)}",
            )
        )
    elif need_bytes is None:
        warnings.append("the backup's size is unknown: free space was not compared")
    elif free is None:
        warnings.append(f"free space on {where} could not be read")
    if port is not None:
        busy = facts.get("port_busy")
        if busy:
            refusals.append(
                Refusal(
                    RefusalKind.PORT_BUSY,
                    f"port {port} on {where} is in use ({'/'.join(busy)} socket): choose another",
                )
            )
        elif not one("port_checked"):
            warnings.append(f"could not check whether port {port} is free on {where} (no ss)")
    return PreflightReport(
        where, destination, exists is not None, free, need_bytes, refusals, warnings
    )


def parse_facts(text: str) -> dict[str, list[str]]:
    facts: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("\t")
        if sep:
            facts.setdefault(key, []).append(value)
    return facts


async def preflight(
    transport: Transport,
    destination: str,
    *,
    need_bytes: int | None,
    port: int | None = None,
    timeout: float = 30.0,
) -> PreflightReport:
    """Check the destination (a path on the transport's host). Raises TransportError if the
    host cannot be asked; refusals are in the report (see raise_if_refused)."""
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"port {port} is not between 1 and 65535")
    argv = [
        "sh",
        "-c",
        PREFLIGHT_SCRIPT,
        "drconsole-preflight",
        destination,
        "" if port is None else str(port),
    ]
    result = await transport.run(argv, timeout=timeout)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise TransportError(
            f"pre-flight checks on {transport.name} failed (exit {result.returncode})"
            + (f": {detail[-1]}" if detail else "")
        )
    return evaluate(
        parse_facts(result.stdout),
        where=transport.name,
        destination=destination,
        need_bytes=need_bytes,
        port=port,
    )


# $1 port: prints "busy" when something listens on it (TCP or a PostgreSQL unix socket).
PORT_SCRIPT = r"""
command -v ss >/dev/null 2>&1 || { echo unknown; exit 0; }
ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && { echo busy; exit 0; }
ss -Hlx 2>/dev/null | grep -q "\.s\.PGSQL\.$1[[:space:]]" && { echo busy; exit 0; }
echo free
"""


async def port_free(transport: Transport, port: int, timeout: float = 30.0) -> bool:
    """True when nothing listens on the port on the transport's host (unknown counts as free)."""
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is not between 1 and 65535")
    result = await transport.run(
        ["sh", "-c", PORT_SCRIPT, "drconsole-port", str(port)], timeout=timeout
    )
    return result.stdout.strip() != "busy"


def backup_need_bytes(size_bytes: int | None, wal_size_bytes: int | None) -> int | None:
    if size_bytes is None:
        return None
    return size_bytes + (wal_size_bytes or 0)


CLAIM_NAME = ".drconsole-claim"

# $1 destination: creates it (0700) if absent, then claims it with one mkdir (atomic: of two
# recoveries checking the same empty destination at the same moment, exactly one gets it).
# Prints "claimed", "taken <who>" or "not_empty <entries>".
CLAIM_SCRIPT = r"""
dest=$1
umask 077
mkdir -p -- "$dest" || exit 1
if mkdir -- "$dest/.drconsole-claim" 2>/dev/null; then
  printf 'since %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$dest/.drconsole-claim/by"
  others=$(ls -A -- "$dest" | grep -vx '.drconsole-claim' | head -n 3 | tr '\n' ' ')
  if [ -n "$others" ]; then
    rm -rf -- "$dest/.drconsole-claim"
    printf 'not_empty %s\n' "$others"
  else
    echo claimed
  fi
else
  printf 'taken %s\n' "$(head -c 200 "$dest/.drconsole-claim/by" 2>/dev/null)"
fi
exit 0
"""


async def claim_destination(transport: Transport, destination: str, timeout: float) -> None:
    """Claim the (checked) destination before anything is written to it; PreflightRefused
    when another recovery has it or something was written since the pre-flight check."""
    result = await transport.run(
        ["sh", "-c", CLAIM_SCRIPT, "drconsole-claim", destination], timeout=timeout
    )
    answer = result.stdout.strip()
    place = f"{destination} on {transport.name}"
    if result.returncode != 0 or not answer:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise TransportError(
            f"cannot claim {place} (exit {result.returncode})"
            + (f": {detail[-1]}" if detail else "")
        )
    if answer == "claimed":
        return
    kind, _, rest = answer.partition(" ")
    if kind == "taken":
        message = (f"{place} is being recovered into by another drconsole ({rest or 'unknown'}): "
                   "wait for it, or choose another destination")  # fmt: skip
    else:
        message = (f"{place} is not empty any more (found {rest.strip()}): something wrote to "
                   "it after the pre-flight check; drconsole never overwrites")  # fmt: skip
    raise PreflightRefused([Refusal(RefusalKind.NOT_EMPTY, message)])


async def release_destination(transport: Transport, destination: str, timeout: float) -> None:
    """Remove the claim once the recovery has ended (never raises: the claim is a dot-directory
    PostgreSQL ignores, and what it protected has been written by then)."""
    with contextlib.suppress(TransportError):
        await transport.run(["rm", "-rf", "--", f"{destination.rstrip('/')}/{CLAIM_NAME}"],
                            timeout=timeout)  # fmt: skip
