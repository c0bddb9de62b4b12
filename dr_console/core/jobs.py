"""Detached operations on a Barman node: start, re-attach, tail, cancel, wait, journal.

A job lives in <job_dir>/<job_id>/ on the node: argv, meta.json, pid, started_at, output.log,
and, once it has ended, ended_at and exit_status (written atomically). It runs under its own
session (setsid), so neither the console nor the ssh session that started it can take it down.

Everything that runs on the node is one of the constant shell scripts below; the values (job
directory, job id, argv) always arrive as positional parameters, never inside the script text.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import os
import re
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from dr_console.config import Config, NodeConfig
from dr_console.core.barman_errors import BarmanLocked, UnknownServer
from dr_console.core.job_progress import JobProgress
from dr_console.core.journal import Journal, JournalError, JournalEvent, os_user, read_journal
from dr_console.core.node_facts import lock_directory, parse_output, tasks_argv
from dr_console.core.transport import Transport, TransportError
from dr_console.core.validation import UnsafeValue, check_server_name
from dr_console.models import Job, JobState

log = logging.getLogger(__name__)

JOB_ID_RE = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
OPERATION_RE = re.compile(r"[a-z][a-z0-9-]{0,31}")
TAIL_LAST_LINES = 200
_TAIL_MARK = "\x1edrconsole-tail "
_PREFLIGHT_OPERATIONS = frozenset({"backup"})
# One job at a time per server, claimed atomically on the node (Barman's own lock is taken only
# once its process is well under way, too late to refuse the second start up front).
_EXCLUSIVE_OPERATIONS = frozenset({"backup"})

# Resolves $1 (may start with ~, expanded with the node's $HOME) into $base.
_RESOLVE_BASE = r"""
base=$1
case $base in
  "~") base=$HOME ;;
  "~/"*) base=$HOME/${base#"~/"} ;;
esac
"""

# The job itself: keeps running when signalled (the trap), so that it outlives Barman and can
# record its exit status. Traps are reset in the command it runs, so Barman gets the signals.
# The launcher's claim (fd 9) stays with this shell: nothing Barman leaves behind can hold it.
_WRAPPER = r"""
trap : INT TERM HUP
echo $$ > pid.tmp && mv -f pid.tmp pid
date -u +%Y-%m-%dT%H:%M:%SZ > started_at
"$@" 9>&-
rc=$?
date -u +%Y-%m-%dT%H:%M:%SZ > ended_at
echo "$rc" > exit_status.tmp && mv -f exit_status.tmp exit_status
"""

# $1 job_dir, $2 job_id, $3 claim (empty: none), $4... argv; meta.json on stdin. Prints
# "dir\t<path>" and "pid\t<pid>". A claim is an flock on <job_dir>/.<claim>.lock taken before
# anything is written and inherited by the job, so it is held exactly as long as the job runs:
# a second launcher with the same claim exits 75 without starting anything.
LAUNCHER = (
    "set -eu\n"
    + _RESOLVE_BASE
    + "wrapper='"
    + _WRAPPER
    + r"""'
id=$2
claim=$3
shift 3
umask 077
mkdir -p -- "$base"
if [ -n "$claim" ]; then
  exec 9>>"$base/.$claim.lock"
  flock -n 9 || { echo "claimed: $claim"; exit 75; }
fi
# Job files are the user's alone, also where an earlier version left the directories 0755.
chmod go-rwx -- "$base" 2>/dev/null || true
case $base in "$HOME"/.drconsole/*) chmod go-rwx -- "$HOME/.drconsole" 2>/dev/null || true ;; esac
dir=$(cd -P -- "$base" && pwd -P)/$id
mkdir -m 700 -- "$dir"
cd -- "$dir"
cat > meta.json
printf '%s\n' "$@" > argv
: > output.log
setsid -f nohup sh -c "$wrapper" drconsole-job "$@" </dev/null >>output.log 2>&1
i=0
while [ ! -s pid ] && [ "$i" -lt 500 ]; do sleep 0.02; i=$((i+1)); done
printf 'dir\t%s\npid\t%s\n' "$dir" "$(cat pid 2>/dev/null || true)"
"""
)

# $1 job_dir, [$2 job_id]: one block per job, "key\tvalue" lines, each block starting with "job".
LISTER = (
    _RESOLVE_BASE
    + r"""
[ -d "$base" ] || exit 0
base=$(cd -P -- "$base" && pwd -P)
for d in "$base"/${2:-*}; do
  [ -f "$d/argv" ] || continue
  printf 'job\t%s\t%s\n' "${d##*/}" "$d"
  pid=$(cat "$d/pid" 2>/dev/null || true)
  alive=0
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    # Same pid and same working directory: not a recycled pid. A zombie has no cwd.
    if [ -d /proc/self ]; then cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null || true); else cwd=$d; fi
    [ "$cwd" = "$d" ] && alive=1
  fi
  group=0
  [ "$alive" = 1 ] || { [ -n "$pid" ] && kill -s 0 -- "-$pid" 2>/dev/null && group=1; }
  printf 'pid\t%s\nalive\t%s\ngroup\t%s\n' "$pid" "$alive" "$group"
  for f in exit_status started_at ended_at cancelled; do
    [ -f "$d/$f" ] && printf '%s\t%s\n' "$f" "$(head -c 64 "$d/$f" | tr -d '\n')"
  done
  printf 'meta\t%s\n' "$(head -c 65536 "$d/meta.json" | tr -d '\n')"
done
exit 0
"""
)

# $1 job_dir, $2 job_id, $3 first line ("+N") or "last". Prints a mark line with the first line
# number, then the log, following it while the job runs (tail drains and exits once it ended).
TAILER = (
    _RESOLVE_BASE
    + r"""
dir=$base/$2
cd -- "$dir" 2>/dev/null || { echo "no such job: $dir"; exit 3; }
if [ "$3" = last ]; then
  n=$(wc -l < output.log)
  n=$(( n > 199 ? n - 199 : 1 ))
else
  n=${3#+}
fi
printf '\036drconsole-tail %s\n' "$n"
if [ -f exit_status ] || [ ! -s pid ]; then
  exec tail -n "+$n" output.log 2>/dev/null
fi
pid=$(cat pid)
# tail --pid needs a pid that disappears when the job ends. The job's own pid may linger as a
# zombie where init reaps slowly, so a watcher child of this shell (reaped by it) stands in.
( while [ ! -f exit_status ] && kill -s 0 "$pid" 2>/dev/null && kill -s 0 "$$" 2>/dev/null; do
    sleep 0.1
  done ) &
tail -n "+$n" -s 0.1 --pid="$!" -F output.log 2>/dev/null
"""
)

# $1 job_dir, $2 job_id, $3 INT|TERM: signal the job's process group unless it is empty (the
# command may have ended while something it started in the background is still there).
SIGNALLER = (
    _RESOLVE_BASE
    + r"""
dir=$base/$2
cd -- "$dir" 2>/dev/null || { echo "no such job: $dir"; exit 3; }
pid=$(cat pid)
kill -s 0 -- "-$pid" 2>/dev/null || { echo ended; exit 0; }
[ -f exit_status ] || : > cancelled
kill -s "$3" -- "-$pid" 2>/dev/null && echo signalled || echo ended
"""
)


class JobError(Exception):
    """A job could not be started, found or controlled. The message is for the user."""


def new_job_id(now: datetime | None = None) -> str:
    at = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{at:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def check_job_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not JOB_ID_RE.fullmatch(job_id):
        raise UnsafeValue(f"job id {job_id!r} is not of the form YYYYMMDDTHHMMSSZ-xxxxxx")
    return job_id


def check_job_dir(job_dir: str) -> str:
    if not job_dir or any(c in job_dir for c in "\0\n\r"):
        raise UnsafeValue(f"job directory {job_dir!r} is empty or holds control characters")
    if not (job_dir.startswith("/") or job_dir == "~" or job_dir.startswith("~/")):
        raise UnsafeValue(f"job directory {job_dir!r} must be absolute or start with '~/'")
    return job_dir


def check_job_argv(argv: Sequence[str]) -> tuple[str, ...]:
    if isinstance(argv, str) or not argv:
        raise UnsafeValue("a job needs an argv list naming a program")
    args = tuple(argv)
    for arg in args:
        if not isinstance(arg, str) or any(c in arg for c in "\0\n\r"):
            raise UnsafeValue(f"job argument {arg!r} is not a single line of text")
    return args


def _parse_time(value: object) -> datetime | None:
    """An ISO time from a job file; one without a zone is UTC (what the job wrapper writes)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def parse_listing(node: str, text: str, problems: list[str] | None = None) -> list[Job]:
    """Jobs from the LISTER's output (pure; tested on its own). A record that cannot be read
    is skipped and described in `problems`; it never hides the other jobs."""
    blocks: list[dict[str, str]] = []
    for line in text.splitlines():
        key, _, value = line.partition("\t")
        if key == "job":
            job_id, _, path = value.partition("\t")
            blocks.append({"id": job_id, "path": path})
        elif blocks and key:
            blocks[-1][key] = value
    jobs = []
    for b in blocks:
        if not JOB_ID_RE.fullmatch(b["id"]):
            continue  # not one of ours
        try:
            jobs.append(_job_from_block(node, b))
        except (ValueError, TypeError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            if problems is not None:
                problems.append(f"{node}: skipped the unreadable job record {b['path']}: {reason}")
    jobs.sort(key=lambda j: j.job_id)
    return jobs


def _job_from_block(node: str, b: dict[str, str]) -> Job:
    raw = b.get("meta") or "{}"
    try:
        meta = json.loads(raw)
    except ValueError:
        if raw.startswith("{"):
            raise ValueError("meta.json is not valid JSON") from None
        meta = {}
    if not isinstance(meta, dict):
        raise ValueError("meta.json is not a JSON object")
    exit_text = b.get("exit_status", "").strip()
    exit_status = int(exit_text) if re.fullmatch(r"-?\d+", exit_text) else None
    pid_text = b.get("pid", "").strip()
    argv = meta.get("argv")
    return Job(
        job_id=b["id"],
        node=node,
        server=_text(meta.get("server")),
        operation=_text(meta.get("operation")) or "?",
        argv=tuple(str(a) for a in argv) if isinstance(argv, list) else (),
        job_path=b["path"],
        pid=int(pid_text) if pid_text.isdigit() else None,
        state=_state(b.get("alive") == "1", exit_status, "cancelled" in b),
        started_at=_parse_time(b.get("started_at")) or _parse_time(meta.get("at")),
        ended_at=_parse_time(b.get("ended_at")),
        exit_status=exit_status,
        user=_text(meta.get("user")),
        ssh_client=_text(meta.get("ssh_client")),
    )


def _state(alive: bool, exit_status: int | None, cancelled: bool) -> JobState:
    if exit_status is None:
        return JobState.RUNNING if alive else JobState.LOST
    if cancelled:
        return JobState.CANCELLED
    return JobState.SUCCEEDED if exit_status == 0 else JobState.FAILED


class JobManager:
    """Starts and follows jobs on the nodes of `config` through `transports` (node name -> one)."""

    def __init__(
        self,
        transports: Mapping[str, Transport],
        journal: Journal,
        config: Config,
        *,
        cancel_grace: float = 10.0,
    ) -> None:
        self.transports = transports
        self.journal = journal
        self.config = config
        self.cancel_grace = cancel_grace
        self._progress: dict[tuple[str, str], JobProgress] = {}
        # node -> the job records the last listing there had to skip (unreadable), for the user
        self.problems: dict[str, list[str]] = {}
        self._reported_problems: set[str] = set()
        self._journalled_end: set[tuple[str, str]] = set()
        self._attached: set[tuple[str, str]] = set()
        self._journal_loaded = False

    # --- helpers ------------------------------------------------------------------------------

    def _node(self, node: str) -> tuple[NodeConfig, Transport]:
        try:
            cfg = self.config.node(node)
        except KeyError:
            raise JobError(f"unknown node {node!r}: it is not in the configuration") from None
        transport = self.transports.get(node)
        if transport is None:
            raise JobError(f"no connection to node {node!r}")
        return cfg, transport

    def _timeout(self, cfg: NodeConfig) -> float:
        return self.config.command_timeout(cfg.name)

    async def _sh(
        self, node: str, script: str, name: str, args: Sequence[str], stdin: str | None = None
    ) -> str:
        cfg, transport = self._node(node)
        result = await transport.run(
            ["sh", "-c", script, name, *args], timeout=self._timeout(cfg), stdin=stdin
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise JobError(
                f"{name} on {node} failed (exit {result.returncode})"
                + (f": {detail[-1]}" if detail else "")
            )
        return result.stdout

    def progress(self, job: Job) -> JobProgress:
        """The progress read so far from this job's log (fed by tail())."""
        return self._progress.setdefault((job.node, job.job_id), JobProgress())

    # --- operations ---------------------------------------------------------------------------

    async def start(
        self, node: str, server: str | None, operation: str, argv: Sequence[str]
    ) -> Job:
        cfg, _ = self._node(node)
        if server is not None:
            check_server_name(server)
        if not OPERATION_RE.fullmatch(operation):
            raise UnsafeValue(f"operation {operation!r} is not a simple word")
        args = check_job_argv(argv)
        job_dir = check_job_dir(cfg.job_dir)
        if operation in _PREFLIGHT_OPERATIONS and server is not None:
            await self._refuse_if_locked(node, cfg, server, operation)
        self.journal.check_writable()  # no operation without its audit record
        job_id = new_job_id()
        started = datetime.now(UTC)
        user, ssh_client = _who()
        meta = {
            "job_id": job_id,
            "node": node,
            "server": server,
            "operation": operation,
            "argv": list(args),
            "user": user,
            "ssh_client": ssh_client,
            "at": started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        claim = f"{operation}-{server}" if operation in _EXCLUSIVE_OPERATIONS and server else ""
        try:
            out = await self._sh(
                node, LAUNCHER, "drconsole-job", [job_dir, job_id, claim, *args],
                stdin=json.dumps(meta),
            )  # fmt: skip
        except JobError as exc:
            if claim and f"claimed: {claim}" in str(exc):
                raise BarmanLocked(
                    f"a {operation} of {server} is already starting or running on {node} "
                    "(started by another drconsole at the same moment)",
                    kind="locked",
                ) from None
            raise
        fields = dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)
        path = fields.get("dir", "")
        pid_text = fields.get("pid", "").strip()
        if not path:
            raise JobError(f"the job did not start on {node}: {out.strip() or 'no output'}")
        job = Job(
            job_id=job_id,
            node=node,
            server=server,
            operation=operation,
            argv=args,
            job_path=path,
            pid=int(pid_text) if pid_text.isdigit() else None,
            state=JobState.RUNNING,
            started_at=started,
            user=user,
            ssh_client=ssh_client,
        )
        try:
            self._journal(JournalEvent.STARTED, job)
        except JournalError as exc:
            raise JournalError(
                f"job {job_id} ({operation}) started on {node} but could not be journalled: "
                f"{exc}. Cancel it if it must not run unrecorded."
            ) from exc
        return job

    async def _refuse_if_locked(
        self, node: str, cfg: NodeConfig, server: str, operation: str
    ) -> None:
        for other in await self.list(node, journal=False):
            if other.running and other.server == server and other.operation == operation:
                raise BarmanLocked(
                    f"a {operation} of {server} is already running on {node} "
                    f"(job {other.job_id}, pid {other.pid}): Barman holds the {operation} lock",
                    kind="locked",
                )
        # The running tasks, from the kernel's lock table (as on every supported Barman; its
        # `list-processes` exists only from 3.14): `show-servers` says where the locks are.
        argv = [cfg.barman]
        if cfg.barman_config:
            argv += ["-c", cfg.barman_config]
        argv += ["-f", "json", "show-servers", server]
        _, transport = self._node(node)
        try:
            result = await transport.run(argv, timeout=self._timeout(cfg))
            said = result.stdout + result.stderr
            data = json.loads(result.stdout) if result.returncode == 0 else {}
            shown = data.get(server) if isinstance(data, dict) else None
            if "Unknown server" in said or (result.returncode == 0 and isinstance(data, dict)
                                            and server not in data):
                raise UnknownServer(
                    f"Barman on {node} has no server {server!r} (barman show-servers does not "
                    "list it): nothing was started",
                    returncode=result.returncode, argv=argv,
                )  # fmt: skip
            if not isinstance(shown, dict):
                return  # Barman's answer is not understood: its own lock still refuses
            tasks = await transport.run(
                tasks_argv(server, lock_directory(shown)), timeout=self._timeout(cfg)
            )
        except (TransportError, ValueError, RecursionError, UnsafeValue) as exc:
            # Barman itself still refuses a second backup; this check only says it earlier.
            log.warning("no lock check on %s before a %s: %s", node, operation, exc)
            return
        facts = parse_output(tasks.stdout).servers.get(server)
        for proc in facts.processes if facts is not None else ():
            if proc.name == operation:
                raise BarmanLocked(
                    f"Another {operation} process is running for server {server} on {node} "
                    f"(barman pid {proc.pid}): Barman holds the {operation} lock",
                    returncode=tasks.returncode,
                    argv=argv,
                )

    async def list(self, node: str, *, journal: bool = True) -> list[Job]:
        """Jobs found on the node, oldest first; new sightings and endings go to the journal."""
        cfg, _ = self._node(node)
        out = await self._sh(node, LISTER, "drconsole-jobs", [check_job_dir(cfg.job_dir)])
        problems: list[str] = []
        jobs = [self._with_phase(j) for j in parse_listing(node, out, problems)]
        self.problems[node] = problems
        if journal:
            self._load_journal()
            for job in jobs:
                key = (job.node, job.job_id)
                # A running job is re-attached once per console; an ended one the journal
                # already knows is left alone, so listing does not grow the journal.
                if key not in self._attached and (job.running or key not in self._journalled_end):
                    self._attached.add(key)
                    self._journal(JournalEvent.ATTACHED, job)
                self._journal_end(job)
        return jobs

    def _load_journal(self) -> None:
        """Learn, once, which jobs the journal has already seen end."""
        if self._journal_loaded:
            return
        self._journal_loaded = True
        for record in read_journal(self.journal.path):
            if record.exit_status is not None or record.cancelled:
                self._journalled_end.add((record.node, record.job_id))

    def unreported_problems(self, node: str) -> builtins.list[str]:
        """The last listing's problems on the node not handed out before (say each once)."""
        fresh = [p for p in self.problems.get(node, []) if p not in self._reported_problems]
        self._reported_problems.update(fresh)
        return fresh

    async def get(self, node: str, job_id: str) -> Job:
        cfg, _ = self._node(node)
        check_job_id(job_id)
        out = await self._sh(node, LISTER, "drconsole-jobs", [check_job_dir(cfg.job_dir), job_id])
        found = parse_listing(node, out)
        if not found:
            raise JobError(f"no job {job_id} on {node} (looked in {cfg.job_dir})")
        return self._with_phase(found[0])

    def _with_phase(self, job: Job) -> Job:
        progress = self._progress.get((job.node, job.job_id))
        if progress is None or progress.phase is None:
            return job
        return replace(job, phase=progress.phase)

    async def tail(
        self, job: Job, from_start: bool = True, *, retries: int = 3, retry_delay: float = 1.0
    ) -> AsyncIterator[str]:
        """The job's output, line by line, following it until the job has ended and it is drained.

        from_start=False begins with the last 200 lines. A dropped connection is retried
        (`retries` times in a row) from the line after the last one yielded.
        """
        cfg, transport = self._node(job.node)
        job_dir = check_job_dir(cfg.job_dir)
        check_job_id(job.job_id)
        progress = self.progress(job)
        start = "+1" if from_start else "last"
        next_line: int | None = None
        failures = 0
        while True:
            try:
                argv = ["sh", "-c", TAILER, "drconsole-tail", job_dir, job.job_id, start]
                async with transport.stream(argv) as lines:
                    first = True
                    async for line in lines:
                        if first and line.startswith(_TAIL_MARK):
                            first = False
                            number = line[len(_TAIL_MARK) :].strip()
                            next_line = int(number) if number.isdigit() else 1
                            continue
                        first = False
                        if next_line is None:  # the node said something else: an error
                            raise JobError(f"cannot follow job {job.job_id} on {job.node}: {line}")
                        next_line += 1
                        failures = 0
                        progress.feed(line)
                        yield line
                    if lines.returncode not in (0, None):
                        raise JobError(
                            f"following job {job.job_id} on {job.node} failed "
                            f"(exit {lines.returncode})"
                        )
                return
            except TransportError as exc:
                failures += 1
                if failures > retries:
                    raise JobError(
                        f"lost the connection to {job.node} while following job {job.job_id}: "
                        f"{exc} (the job itself keeps running)"
                    ) from exc
                log.info("tail of %s on %s interrupted (%s); resuming", job.job_id, job.node, exc)
                if next_line is not None:
                    start = f"+{next_line}"
                await asyncio.sleep(retry_delay)

    async def wait(self, job: Job, poll: float = 1.0, timeout: float | None = None) -> int | None:
        """Wait until the job has ended; its exit status (None: the job was lost)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            current = await self.get(job.node, job.job_id)
            if not current.running:
                self._journal_end(current)
                return current.exit_status
            if deadline is not None and loop.time() >= deadline:
                raise TimeoutError(f"job {job.job_id} on {job.node} still running after {timeout}s")
            await asyncio.sleep(poll)

    async def cancel(self, job: Job) -> Job:
        """SIGINT the job's process group, SIGTERM after the grace period; journal it."""
        cfg, _ = self._node(job.node)
        job_dir = check_job_dir(cfg.job_dir)
        check_job_id(job.job_id)
        for signal_name in ("INT", "TERM"):
            out = await self._sh(
                job.node, SIGNALLER, "drconsole-cancel", [job_dir, job.job_id, signal_name]
            )
            if "signalled" not in out or await self._group_gone(job, self.cancel_grace):
                break
        current = await self.get(job.node, job.job_id)
        if current.running:  # it ignored SIGTERM too; the journal still says it was cancelled
            self._journal(JournalEvent.CANCELLED, current)
        else:
            # CANCELLED if the signal reached the command; FINISHED if it had ended by itself.
            self._journal_end(current)
        return current

    async def _group_gone(self, job: Job, seconds: float) -> bool:
        """Wait until no process of the job's group is left (True) or `seconds` pass (False)."""
        cfg, _ = self._node(job.node)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            out = await self._sh(
                job.node, LISTER, "drconsole-jobs", [check_job_dir(cfg.job_dir), job.job_id]
            )
            if "alive\t1" not in out and "group\t1" not in out:
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.2)

    # --- journal ------------------------------------------------------------------------------

    def _journal_end(self, job: Job) -> None:
        key = (job.node, job.job_id)
        if job.running or key in self._journalled_end:
            return
        self._journalled_end.add(key)
        event = JournalEvent.CANCELLED if job.state is JobState.CANCELLED else JournalEvent.FINISHED
        self._journal(event, job)

    def _journal(self, event: JournalEvent, job: Job) -> None:
        self.journal.record(
            event,
            job_id=job.job_id,
            node=job.node,
            server=job.server,
            operation=job.operation,
            argv=job.argv,
            exit_status=job.exit_status,
            log_path=job.log_path,
        )


def _who() -> tuple[str | None, str | None]:
    return os_user(), os.environ.get("SSH_CLIENT") or None
