"""Which Barman the lab runs: the running interpreter's venv when every lab user can execute it,
otherwise a venv of its own in <base>/venv, from Debian's interpreter (the lab users cannot read a
pyenv under /root), with psycopg2-binary installed before Barman so that pip compiles nothing."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from dr_console.lab.errors import LabError
from dr_console.lab.proc import Account, run
from dr_console.lab.settings import LabSettings

SYSTEM_PYTHON = "/usr/bin/python3"
# What every supported Barman (3.4.0 to 3.19.1) imports besides itself: 3.4 imports argcomplete
# unconditionally, 3.16 imports setuptools' pkg_resources.
BARMAN_DEPENDENCIES = ("psycopg2-binary", "python-dateutil", "argcomplete", "setuptools")


def usable_by(venv: Path, accounts: Sequence[Account], version: str) -> bool:
    """True when each account can run VENV's barman and it reports VERSION."""
    barman = venv / "bin" / "barman"
    try:
        if not barman.exists():
            return False
    except OSError:  # a single-user lab's user may not even look into a private checkout
        return False
    for account in accounts:
        try:
            cp = run([str(barman), "--version"], timeout=60, account=account, check=False)
        except LabError:  # e.g. a parent directory the lab users may not enter (mode 700)
            return False
        if cp.returncode != 0 or version not in (cp.stdout + cp.stderr):
            return False
    return True


def ensure(settings: LabSettings, accounts: Sequence[Account]) -> tuple[Path, bool]:
    """(venv path, whether the lab created it)."""
    current = Path(sys.prefix)
    if usable_by(current, accounts, settings.barman_version):
        return current, False
    own = settings.base_dir / "venv"
    if usable_by(own, accounts, settings.barman_version):
        return own, True
    if not Path(SYSTEM_PYTHON).exists():
        raise LabError(f"{SYSTEM_PYTHON} is missing; install python3-venv (see README)")
    run([SYSTEM_PYTHON, "-m", "venv", "--clear", str(own)], timeout=180)
    pip = [str(own / "bin" / "python"), "-m", "pip", "install", "-q", "--no-cache-dir"]
    # psycopg2-binary first and barman without deps: pip would compile psycopg2 from source.
    run([*pip, *BARMAN_DEPENDENCIES], timeout=600)
    run([*pip, "--no-deps", f"barman=={settings.barman_version}"], timeout=600)
    own.chmod(0o755)
    if not usable_by(own, accounts, settings.barman_version):
        raise LabError(f"{own}: barman {settings.barman_version} installed but not runnable")
    return own, True
