"""The lab's OS users: created only when absent, with their home under the lab's base dir."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from dr_console.lab.errors import LabError
from dr_console.lab.proc import Account, run


def lookup(name: str) -> Account | None:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return Account(name=name, uid=entry.pw_uid, gid=entry.pw_gid, home=Path(entry.pw_dir))


def create(name: str, home: Path) -> Account:
    home.parent.mkdir(parents=True, exist_ok=True)
    run(["useradd", "-m", "-d", str(home), "-s", "/bin/bash", name], timeout=30)
    account = lookup(name)
    if account is None:
        raise LabError(f"useradd {name} succeeded but the user cannot be found")
    return account


def delete(name: str) -> None:
    """userdel -r; exit 6 (no such user) is fine, so is 12 (home already gone)."""
    cp = run(["userdel", "-r", name], timeout=30, check=False)
    if cp.returncode not in (0, 6, 12):
        raise LabError(f"userdel -r {name} failed (exit {cp.returncode}): {cp.stderr.strip()}")


def write_owned(path: Path, text: str, account: Account, mode: int = 0o644) -> bool:
    """Write TEXT to PATH owned by ACCOUNT; return True when the content changed."""
    try:
        changed = path.read_text(encoding="utf-8") != text
    except OSError:
        changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    os.chown(path, account.uid, account.gid)
    os.chmod(path, mode)
    return changed


def make_dir(path: Path, account: Account, mode: int = 0o700) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, account.uid, account.gid)
    os.chmod(path, mode)
