"""The post-recovery checklist, evaluated on the restored configuration files (pure).

PostgreSQL reads postgresql.conf, following include / include_if_exists / include_dir where
they stand, then postgresql.auto.conf; the last setting wins. `barman recover` only rewrites
postgresql.conf and postgresql.auto.conf, so an archive_command in an included file survives
(FINDINGS P10): this module reports it. The caller reads the files (see `core.restored`).
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace

from dr_console.models import Health

MAX_INCLUDE_DEPTH = 10  # PostgreSQL's own limit
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_INCLUDES = ("include", "include_if_exists", "include_dir")
_ARCHIVE_KEYS = ("archive_command", "archive_mode", "archive_library")
_TARGET_KEYS = (
    "recovery_target", "recovery_target_time", "recovery_target_lsn", "recovery_target_xid",
    "recovery_target_name", "recovery_target_timeline", "recovery_target_action",
    "recovery_target_inclusive",
)  # fmt: skip
_LOOPBACK = {"localhost", "127.0.0.1", "::1", ""}


@dataclass(frozen=True)
class ConfLine:
    """One setting or include directive: (file, line) where it stands and its unquoted value."""

    file: str
    line: int
    name: str  # lower case
    value: str


def parse_conf(text: str, file: str) -> list[ConfLine]:
    """Settings and include directives of one file, in order. Unparsable lines are skipped
    (PostgreSQL would refuse to start; the checklist is not the place to diagnose that)."""
    out: list[ConfLine] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        parsed = _parse_line(raw)
        if parsed is not None:
            out.append(ConfLine(file, number, parsed[0].lower(), parsed[1]))
    return out


def _parse_line(raw: str) -> tuple[str, str] | None:
    line = raw.strip()
    match = _NAME_RE.match(line)
    if match is None:
        return None
    name, rest = match.group(), line[match.end() :].lstrip()
    if rest.startswith("="):
        rest = rest[1:].lstrip()
    if rest.startswith("'"):
        value, i = [], 1
        while i < len(rest):
            ch = rest[i]
            if ch == "\\" and i + 1 < len(rest):
                value.append(rest[i + 1])
                i += 2
                continue
            if ch == "'":
                if rest[i + 1 : i + 2] == "'":
                    value.append("'")
                    i += 2
                    continue
                return name, "".join(value)
            value.append(ch)
            i += 1
        return None  # unterminated quote
    word = re.match(r"[^\s#]*", rest)
    return name, word.group() if word else ""


def include_path(including_file: str, path: str) -> str:
    """Where an include directive points: relative paths are relative to the including file."""
    if path.startswith("/"):
        return posixpath.normpath(path)
    return posixpath.normpath(posixpath.join(posixpath.dirname(including_file), path))


def conf_dir_files(directory: str, names: Sequence[str]) -> list[str]:
    """The files include_dir reads, in PostgreSQL's order: *.conf, no dot files, sorted."""
    chosen = sorted(n for n in names if n.endswith(".conf") and not n.startswith("."))
    return [posixpath.join(directory, n) for n in chosen]


@dataclass(frozen=True)
class RestoredConf:
    """What was read from a restored data directory."""

    data_dir: str
    texts: Mapping[str, str | None]  # absolute path -> text (None: absent or unreadable)
    dir_listings: Mapping[str, Sequence[str]] = field(default_factory=dict)
    signal_files: Collection[str] = ()  # "recovery.signal", "standby.signal" when present

    @property
    def main_file(self) -> str:
        return posixpath.join(self.data_dir, "postgresql.conf")

    @property
    def auto_file(self) -> str:
        return posixpath.join(self.data_dir, "postgresql.auto.conf")


@dataclass(frozen=True)
class Walk:
    settings: list[ConfLine]  # in the order PostgreSQL applies them
    includes: list[tuple[ConfLine, str]]  # directive and the resolved path
    needed: list[str]  # files the walk wanted but `texts` does not have yet
    problems: list[str]


def walk(conf: RestoredConf) -> Walk:
    """Apply the files in PostgreSQL's order. `needed` lists what a reader still has to fetch."""
    result = Walk([], [], [], [])

    def visit(path: str, depth: int, required: bool, origin: ConfLine | None) -> None:
        if depth > MAX_INCLUDE_DEPTH:
            result.problems.append(f"{path}: includes nested deeper than {MAX_INCLUDE_DEPTH}")
            return
        if path not in conf.texts:
            result.needed.append(path)
            return
        text = conf.texts[path]
        if text is None:
            if required and origin is not None:
                result.problems.append(
                    f"{origin.file}:{origin.line}: include '{origin.value}' points to a file "
                    "that was not restored: PostgreSQL will refuse to start"
                )
            return
        for entry in parse_conf(text, path):
            if entry.name in _INCLUDES:
                target = include_path(path, entry.value)
                result.includes.append((entry, target))
                if entry.name == "include_dir":
                    if target not in conf.dir_listings:
                        result.needed.append(target + "/")
                        continue
                    for file in conf_dir_files(target, conf.dir_listings[target]):
                        visit(file, depth + 1, True, entry)
                else:
                    visit(target, depth + 1, entry.name == "include", entry)
            else:
                result.settings.append(entry)

    visit(conf.main_file, 0, True, None)
    visit(conf.auto_file, 0, False, None)
    return result


@dataclass(frozen=True)
class ChecklistItem:
    key: str
    title: str
    status: Health
    detail: str


def _effective(settings: Sequence[ConfLine]) -> dict[str, ConfLine]:
    out: dict[str, ConfLine] = {}
    for entry in settings:
        out[entry.name] = entry
    return out


def _where(entry: ConfLine) -> str:
    return f"{entry.file}:{entry.line}"


def post_recovery_checklist(
    conf: RestoredConf,
    *,
    remote: bool = False,
    expected_port: int | None = None,
    notes: Mapping[str, str] | None = None,
) -> list[ChecklistItem]:
    """Each item of the reference deployment's checklist, checked on the restored files.
    `notes` (item key -> text) say what drconsole corrected there, e.g. an older Barman's sudo."""
    result = walk(conf)
    eff = _effective(result.settings)
    items = [
        _signals(conf),
        _listen(eff),
        _port(eff, expected_port),
        _restore_command(eff, conf, remote),
        _archive(eff),
        _archive_in_includes(result, conf),
        _targets(eff),
    ]
    if result.problems or result.needed:
        detail = "; ".join(result.problems + [f"not read: {p}" for p in result.needed])
        items.append(ChecklistItem("includes", "included files", Health.CRITICAL, detail))
    if notes:
        items = [
            replace(item, detail=f"{item.detail}; {notes[item.key]}") if item.key in notes
            else item
            for item in items
        ]
    return items


def _signals(conf: RestoredConf) -> ChecklistItem:
    present = sorted(set(conf.signal_files) & {"recovery.signal", "standby.signal"})
    if present:
        return ChecklistItem("signal", "recovery signal file", Health.OK, ", ".join(present))
    return ChecklistItem(
        "signal",
        "recovery signal file",
        Health.CRITICAL,
        "neither recovery.signal nor standby.signal: PostgreSQL would start without replaying "
        "the archived WAL",
    )


def _listen(eff: Mapping[str, ConfLine]) -> ChecklistItem:
    entry = eff.get("listen_addresses")
    value = entry.value if entry else "localhost"
    where = f" ({_where(entry)})" if entry else " (default)"
    addresses = {a.strip() for a in value.split(",")}
    if all(_is_loopback(a) for a in addresses):
        return ChecklistItem(
            "listen_addresses", "listen_addresses", Health.OK, f"'{value}'{where}: loopback only"
        )
    return ChecklistItem(
        "listen_addresses",
        "listen_addresses",
        Health.WARNING,
        f"'{value}'{where}: reachable from the network; make sure clients of the production "
        "server cannot reach the restored one by mistake",
    )


def _is_loopback(address: str) -> bool:
    if address in _LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _port(eff: Mapping[str, ConfLine], expected: int | None) -> ChecklistItem:
    entry = eff.get("port")
    value = entry.value if entry else "5432"
    where = f" ({_where(entry)})" if entry else " (default)"
    if expected is not None and value != str(expected):
        return ChecklistItem(
            "port", "port", Health.WARNING, f"{value}{where}, but {expected} was planned"
        )
    return ChecklistItem("port", "port", Health.OK, f"{value}{where}")


def restore_command_host(command: str) -> str | None:
    """The BARMAN_HOST argument of a barman-wal-restore command (None: not one)."""
    words = command.split()
    if not words or not words[0].endswith("barman-wal-restore"):
        return None
    positional: list[str] = []
    skip = False
    for word in words[1:]:
        if skip:
            skip = False
            continue
        if word in (
            "-U",
            "--user",
            "--port",
            "-s",
            "--sleep",
            "-p",
            "--parallel",
            "--spool-dir",
            "-c",
            "--config",
        ):
            skip = True
            continue
        if word.startswith("-"):
            continue
        positional.append(word)
    return positional[0] if positional else None


def _restore_command(
    eff: Mapping[str, ConfLine], conf: RestoredConf, remote: bool
) -> ChecklistItem:
    title = "restore_command"
    entry = eff.get("restore_command")
    if entry is None or not entry.value.strip():
        status = Health.CRITICAL if conf.signal_files else Health.OK
        return ChecklistItem(
            "restore_command", title, status, "not set: archived WAL cannot be replayed"
        )
    value, where = entry.value, _where(entry)
    host = restore_command_host(value)
    if host in ("localhost", "127.0.0.1", "::1", "[::1]") and remote:
        return ChecklistItem(
            "restore_command",
            title,
            Health.CRITICAL,
            f"'{value}' ({where}) names {host}: from the destination that is not the Barman "
            "node",
        )
    if remote and "barman get-wal" in value:
        return ChecklistItem(
            "restore_command",
            title,
            Health.CRITICAL,
            f"'{value}' ({where}) runs 'barman get-wal' on the destination, which has no Barman",
        )
    return ChecklistItem("restore_command", title, Health.OK, f"'{value}' ({where})")


def _archive(eff: Mapping[str, ConfLine]) -> ChecklistItem:
    title = "archiving disabled"
    mode = eff.get("archive_mode")
    command = eff.get("archive_command")
    library = eff.get("archive_library")
    if mode is not None and mode.value.lower() in ("off", "false", "no", "0"):
        return ChecklistItem(
            "archive_command", title, Health.OK, f"archive_mode = {mode.value} ({_where(mode)})"
        )
    if library is not None and library.value:
        return ChecklistItem(
            "archive_command",
            title,
            Health.CRITICAL,
            f"archive_library = '{library.value}' ({_where(library)}) would archive into the "
            "production catalogue",
        )
    if command is None or command.value.strip() in ("", "false", "/bin/false"):
        shown = f"'{command.value}' ({_where(command)})" if command else "not set"
        return ChecklistItem("archive_command", title, Health.OK, f"archive_command {shown}")
    return ChecklistItem(
        "archive_command",
        title,
        Health.CRITICAL,
        f"archive_command = '{command.value}' ({_where(command)}) is still active: started "
        "as is, the restored server would push a new timeline into the production catalogue",
    )


def _archive_in_includes(result: Walk, conf: RestoredConf) -> ChecklistItem:
    own = {conf.main_file, conf.auto_file}
    found = [e for e in result.settings if e.name in _ARCHIVE_KEYS and e.file not in own]
    if not found:
        return ChecklistItem(
            "archive_in_include", "archive settings in included files", Health.OK, "none"
        )
    listed = "; ".join(f"{e.name} = '{e.value}' at {_where(e)}" for e in found)
    return ChecklistItem(
        "archive_in_include",
        "archive settings in included files",
        Health.WARNING,
        f"{listed}: barman recover does not rewrite included files; remove "
        "it there, and start the restored server with -c archive_mode=off",
    )


def _targets(eff: Mapping[str, ConfLine]) -> ChecklistItem:
    found = [eff[k] for k in _TARGET_KEYS if k in eff]
    if not found:
        return ChecklistItem(
            "recovery_target",
            "recovery target",
            Health.OK,
            "none: replays all available WAL, then promotes",
        )
    listed = ", ".join(f"{e.name} = '{e.value}'" for e in found)
    has_target = any(
        e.name
        not in ("recovery_target_timeline", "recovery_target_action", "recovery_target_inclusive")
        for e in found
    )
    if has_target and "recovery_target_action" not in eff:
        return ChecklistItem(
            "recovery_target",
            "recovery target",
            Health.WARNING,
            f"{listed}; no recovery_target_action: PostgreSQL pauses at the target and waits "
            "for pg_wal_replay_resume()",
        )
    return ChecklistItem("recovery_target", "recovery target", Health.OK, listed)
