"""What an interrupted drill left on a node: its scratch directory and, worse, its restored
PostgreSQL still running with trust authentication on a spare port. Every drill writes the time
by which it will have cleaned up after itself (`deadline`, epoch seconds on the node's clock);
the next drill on the node stops the servers of drills past their deadline and removes their
directories, and says so. A drill still within its deadline (running now, perhaps from another
console) is left alone.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from dr_console.core.restored import RestoredError, check_safe_path, remove_tree
from dr_console.core.transport_base import Transport, TransportError

DEADLINE_FILE = "deadline"
# A drill directory of an older drconsole (no deadline file) counts as left over after this long.
_NO_DEADLINE_GRACE = 3600

# $1 drills directory, $2 grace seconds: "leftover\t<dir>\t<pid or ->" per drill past its deadline.
_FIND_SCRIPT = r"""
now=$(date +%s)
for d in "$1"/*-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]-*; do
  [ -d "$d" ] || continue
  deadline=$(head -c 20 "$d/deadline" 2>/dev/null)
  case $deadline in
    ''|*[!0-9]*) deadline=$(( $(stat -c %Y -- "$d") + $2 )) ;;
  esac
  [ "$now" -gt "$deadline" ] || continue
  pid=-
  if [ -f "$d/data/postmaster.pid" ]; then
    p=$(head -n 1 "$d/data/postmaster.pid" 2>/dev/null)
    case $p in ''|*[!0-9]*) ;; *) kill -0 "$p" 2>/dev/null && pid=$p ;; esac
  fi
  printf 'leftover\t%s\t%s\n' "$d" "$pid"
done
exit 0
"""


@dataclass(frozen=True)
class Leftover:
    directory: str
    pid: int | None  # the restored PostgreSQL still running there


def deadline_argv(root: str, seconds_from_now: int) -> list[str]:
    """Writes ROOT/deadline: the node's clock now plus SECONDS_FROM_NOW."""
    return ["sh", "-c", 'echo $(( $(date +%s) + $2 )) > "$1/deadline"', "drconsole-drill", root,
            str(seconds_from_now)]  # fmt: skip


async def find_leftovers(
    transport: Transport, drills_dir: str, pattern: re.Pattern[str], timeout: float
) -> list[Leftover]:
    check_safe_path(drills_dir, "drills directory")
    result = await transport.run(
        ["sh", "-c", _FIND_SCRIPT, "drconsole-leftovers", drills_dir, str(_NO_DEADLINE_GRACE)],
        timeout=timeout,
    )
    found = []
    for line in result.stdout.splitlines():
        tag, _, rest = line.partition("\t")
        directory, _, pid = rest.partition("\t")
        if tag == "leftover" and pattern.fullmatch(directory):
            found.append(Leftover(directory, int(pid) if pid.isdigit() else None))
    return found


async def clear_leftovers(
    transport: Transport,
    drills_dir: str,
    pattern: re.Pattern[str],
    bindir: str,
    timeout: float,
) -> list[str]:
    """Stop and remove what interrupted drills left; one line per leftover saying what was
    done (or why it could not be)."""
    said = []
    try:
        leftovers = await find_leftovers(transport, drills_dir, pattern, timeout)
    except (TransportError, RestoredError) as exc:
        return [f"could not look for leftovers of earlier drills in {drills_dir}: {exc}"]
    for left in leftovers:
        name = posixpath.basename(left.directory)
        what = f"leftover of an interrupted drill {name}"
        if left.pid is not None:
            stop = await transport.run(
                [posixpath.join(bindir, "pg_ctl"), "-D", f"{left.directory}/data", "-m",
                 "immediate", "-w", "-t", "30", "stop"],
                timeout=timeout + 30,
            )  # fmt: skip
            if stop.returncode != 0:
                said.append(f"{what}: its restored PostgreSQL (pid {left.pid}) would not stop: "
                            f"{(stop.stderr or stop.stdout).strip()[-200:]}")  # fmt: skip
                continue
            what += f": stopped its restored PostgreSQL (pid {left.pid}, trust authentication)"
        try:
            await remove_tree(transport, left.directory, pattern)
        except (TransportError, RestoredError) as exc:
            said.append(f"{what}; could not remove {left.directory}: {exc}")
            continue
        said.append(f"{what}; removed {left.directory}")
    return said
