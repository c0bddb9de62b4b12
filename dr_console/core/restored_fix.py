"""Correcting what an older Barman writes into a restored configuration.

Barman before 3.18 has no `--restore-command`: for a remote get-wal recovery it writes
`barman-wal-restore … <its own host name> …`, a name the destination may not resolve to the
Barman node (on one host it is the destination itself). drconsole then replaces that line with
the command it would have passed, naming the Barman host as the destination reaches it.

Barman before 3.16 writes the restore_command of a local get-wal recovery as
`sudo -u <barman user> barman get-wal …`: it works only where the PostgreSQL user may sudo to
the Barman user without a password, and fails with "sudo: not found" or a password prompt
elsewhere (Barman 3.16 dropped the sudo). drconsole removes that prefix, so that the command is
what Barman 3.16 and later write, and reports the change in the checklist.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from dr_console.core.barman_versions import Capabilities, Feature
from dr_console.core.transport_base import Transport, TransportError

# $1: postgresql.auto.conf. Prints "B <line>" before and "A <line>" after the change; nothing
# when there is no sudo to remove. The user name is matched, never interpolated.
_SCRIPT = r"""
f=$1
[ -f "$f" ] || exit 0
before=$(grep "^restore_command = 'sudo -u [A-Za-z0-9._-]* " "$f") || exit 0
sed -i "s/^restore_command = 'sudo -u [A-Za-z0-9._-]* /restore_command = '/" "$f" || exit 3
printf 'B %s\n' "$before"
printf 'A %s\n' "$(grep '^restore_command = ' "$f" | tail -n 1)"
"""


# $1: postgresql.auto.conf; the new restore_command line arrives on stdin (never in shell text).
# The file is rewritten in place (cat >), so its owner and mode stay Barman's.
_SET_SCRIPT = r"""
f=$1
new=$(cat)
[ -f "$f" ] || { echo "no $f" >&2; exit 3; }
before=$(grep '^restore_command = ' "$f" | tail -n 1)
tmp="$f.drconsole-tmp"
{ grep -v '^restore_command = ' "$f"; printf '%s\n' "$new"; } > "$tmp" || exit 3
cat "$tmp" > "$f" && rm -f "$tmp" || exit 3
printf 'B %s\n' "$before"
printf 'A %s\n' "$(grep '^restore_command = ' "$f" | tail -n 1)"
"""


@dataclass(frozen=True)
class ConfCorrection:
    """One setting drconsole changed in the restored files, and why."""

    key: str  # the checklist item it concerns
    before: str
    after: str
    why: str

    def describe(self) -> str:
        return f"corrected by drconsole: {self.why}; Barman wrote {self.before}"


def needs_sudo_correction(capabilities: Capabilities | None, *, remote: bool) -> bool:
    """A local recovery by a Barman that writes `sudo -u` into the restore_command."""
    return not remote and capabilities is not None and capabilities.local_restore_command_uses_sudo


def needs_restore_command_written(capabilities: Capabilities | None, command: str | None) -> bool:
    """drconsole chose a restore_command that this Barman cannot be told (before 3.18)."""
    return (command is not None and capabilities is not None
            and not capabilities.has(Feature.CUSTOM_RESTORE_COMMAND))


def _before_after(stdout: str) -> tuple[str, str] | None:
    lines = dict(
        (line[:1], line[2:].strip()) for line in stdout.splitlines() if line[1:2] == " "
    )
    if "B" not in lines or "A" not in lines:
        return None
    return lines["B"].partition("=")[2].strip(), lines["A"].partition("=")[2].strip()


async def write_restore_command(
    transport: Transport, data_dir: str, command: str, capabilities: Capabilities,
    timeout: float,
) -> ConfCorrection:
    """Set restore_command in DATA_DIR/postgresql.auto.conf to COMMAND (one line)."""
    if "'" in command or "\n" in command:
        raise TransportError(f"restore command {command!r} cannot be written safely")
    path = posixpath.join(data_dir, "postgresql.auto.conf")
    result = await transport.run(
        ["sh", "-c", _SET_SCRIPT, "drconsole-set", path],
        timeout=timeout,
        stdin=f"restore_command = '{command}'\n",
    )
    pair = _before_after(result.stdout) if result.returncode == 0 else None
    if pair is None:
        raise TransportError(
            f"could not write restore_command into {path}: "
            f"{result.stderr.strip() or f'exit status {result.returncode}'}"
        )
    return ConfCorrection(
        key="restore_command",
        before=pair[0] or "(none)",
        after=pair[1],
        why=(f"Barman {capabilities.version} cannot be given a restore_command (that needs "
             f"Barman >= {Feature.CUSTOM_RESTORE_COMMAND.first}), so drconsole wrote the one "
             "naming the Barman host as the destination reaches it"),
    )


async def remove_restore_command_sudo(
    transport: Transport, data_dir: str, capabilities: Capabilities, timeout: float
) -> ConfCorrection | None:
    """Remove `sudo -u USER ` from the restore_command of DATA_DIR/postgresql.auto.conf."""
    path = posixpath.join(data_dir, "postgresql.auto.conf")
    result = await transport.run(["sh", "-c", _SCRIPT, "drconsole-fix", path], timeout=timeout)
    if result.returncode != 0:
        raise TransportError(
            f"could not correct restore_command in {path}: "
            f"{result.stderr.strip() or f'exit status {result.returncode}'}"
        )
    pair = _before_after(result.stdout)
    if pair is None:
        return None
    return ConfCorrection(
        key="restore_command",
        before=pair[0],
        after=pair[1],
        why=(f"Barman {capabilities.version} runs get-wal through sudo, which the restored "
             "server cannot use; the command is now the one Barman 3.16 and later write "
             "(it runs as the OS user that starts the restored server)"),
    )
