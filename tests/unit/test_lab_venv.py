"""The lab uses the project's venv only when its users can run it; otherwise it builds its own."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

from dr_console.lab.proc import Account
from dr_console.lab.venv import usable_by


def _nobody() -> Account:
    entry = pwd.getpwnam("nobody")
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run as another user")
def test_a_venv_behind_a_private_directory_is_not_usable() -> None:
    base = Path(tempfile.mkdtemp(prefix="drconsole-venv-test-", dir="/var/tmp"))
    base.chmod(0o755)  # pytest's own tmp root is private: every parent here must be open
    hidden = base / "private"
    hidden.mkdir(mode=0o700)
    venv = hidden / "venv"
    (venv / "bin").mkdir(parents=True)
    barman = venv / "bin" / "barman"
    barman.write_text("#!/bin/sh\necho 'barman 3.19.1'\n")
    barman.chmod(0o755)
    try:
        assert usable_by(venv, [_nobody()], "3.19.1") is False  # refused, not an exception
        hidden.chmod(0o755)
        assert usable_by(venv, [_nobody()], "3.19.1") is True
    finally:
        shutil.rmtree(base)
