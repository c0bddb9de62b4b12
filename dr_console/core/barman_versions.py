"""What each supported Barman can do: the one place where a Barman version drives a choice.

Every version-dependent decision (where files live, which command exists, which JSON keys a
report uses, what Barman writes into a restored configuration) asks a `Capabilities` object built
from the node's own `barman --version`. A feature a version lacks is reported with the version
that has it ("needs Barman >= 3.14"), never guessed.

The first versions below were read from the sources of the releases and their release notes:
- 3.11.0: show-backup's JSON reorganised (base backup sizes under `backup_size`, WAL sizes under
  `wal_size`), replacing `disk_usage`; the parser reads whichever keys the document has.
- 3.12.0: `barman recover` renamed `barman restore` (the old name stays as an alias).
- 3.13.0: the WAL catalogue is `<xlogdb_directory>/<server>-xlog.db` (before: `wals/xlog.db`).
- 3.13.2: backup metadata in `<server>/meta/<id>-backup.info` (before: `base/<id>/backup.info`).
- 3.14.0: `barman list-processes`.
- 3.16.0: the restore_command of a local get-wal recovery no longer starts with `sudo -u <user>`.
- 3.18.0: `--restore-command` sets the restore_command Barman writes.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import total_ordering


@total_ordering
@dataclass(frozen=True)
class BarmanVersion:
    major: int
    minor: int
    patch: int = 0

    _RE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")

    @classmethod
    def parse(cls, text: str) -> BarmanVersion:
        """`3.10.1`, `3.4.0`, `3.19.1.dev0` (a suffix is ignored); ValueError otherwise."""
        match = cls._RE.match(text.strip())
        if match is None:
            raise ValueError(f"{text.strip()[:40]!r} is not a Barman version")
        major, minor, patch = match.groups()
        return cls(int(major), int(minor), int(patch or 0))

    def _key(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, BarmanVersion):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


OLDEST_SUPPORTED = BarmanVersion(3, 4, 0)
NEWEST_SUPPORTED = BarmanVersion(3, 19, 1)
# The versions the project records and tests (Debian 12 ships 3.4, Ubuntu 24.04 ships 3.10).
TESTED_VERSIONS = ("3.4.0", "3.10.1", "3.12.1", "3.16.2", "3.19.1")


class Feature(enum.Enum):
    """A version-dependent behaviour, with the first Barman version that has it."""

    RESTORE_COMMAND_NAME = ("3.12.0", "the `restore` command (earlier: `recover`)")
    XLOGDB_PER_SERVER = ("3.13.0", "the WAL catalogue <xlogdb_directory>/<server>-xlog.db")
    META_DIRECTORY = ("3.13.2", "backup metadata in <server>/meta/")
    LIST_PROCESSES = ("3.14.0", "barman list-processes")
    LOCAL_RESTORE_WITHOUT_SUDO = ("3.16.0", "a local restore_command without sudo")
    CUSTOM_RESTORE_COMMAND = ("3.18.0", "recover --restore-command")

    def __init__(self, first: str, what: str) -> None:
        self.first = BarmanVersion.parse(first)
        self.what = what


@dataclass(frozen=True)
class Capabilities:
    """What the Barman of one node does; built once per connection from `barman --version`."""

    version: BarmanVersion

    @classmethod
    def from_version_text(cls, text: str) -> Capabilities:
        return cls(BarmanVersion.parse(text))

    def has(self, feature: Feature) -> bool:
        return self.version >= feature.first

    def lacks(self, feature: Feature) -> str | None:
        """None when the feature is there, else the reason to show ("needs Barman >= 3.14")."""
        if self.has(feature):
            return None
        return f"{feature.what} needs Barman >= {feature.first} (this node runs {self.version})"

    # --- the choices themselves -------------------------------------------------------------

    @property
    def restore_verb(self) -> str:
        """The name of the recovery command (`recover` is a deprecated alias from 3.12)."""
        return "restore" if self.has(Feature.RESTORE_COMMAND_NAME) else "recover"

    def xlogdb_file(self, server: str, wals_directory: str, xlogdb_directory: str | None) -> str:
        if self.has(Feature.XLOGDB_PER_SERVER):
            return f"{xlogdb_directory or wals_directory}/{server}-xlog.db"
        return f"{wals_directory}/xlog.db"

    @property
    def local_restore_command_uses_sudo(self) -> bool:
        return not self.has(Feature.LOCAL_RESTORE_WITHOUT_SUDO)
