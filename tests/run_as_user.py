"""Run the drconsole CLI in-process as another OS user, for tests of what non-root users get.

A forked child becomes the user and calls the real entry point (dr_console.cli.main) with the code
already in memory, so it works even when that user cannot read this checkout (a clone under a
private directory), which `runuser … python -m dr_console` cannot.
"""

from __future__ import annotations

import contextlib
import io
import os
import pwd
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass

import pytest

import dr_console.cli
import dr_console.lab.cli  # imported before forking: the child may not be able to read it


@dataclass(frozen=True)
class Cli:
    returncode: int
    stdout: str
    stderr: str


def as_user(user: pwd.struct_passwd, *argv: str, timeout: float = 900) -> Cli:
    """`drconsole ARGV` (the real CLI entry point) in a child process that has become USER."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            code = 70
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False),
                                              line_buffering=True)
                sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False),
                                              line_buffering=True)
                if os.geteuid() != user.pw_uid:
                    os.setgroups([])
                    os.setgid(user.pw_gid)
                    os.setuid(user.pw_uid)
                os.environ.update(HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
                os.chdir("/")
                code = dr_console.cli.main(list(argv))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail(f"drconsole {' '.join(argv)} as {user.pw_name}: no end in {timeout} s")
            time.sleep(0.2)
        out.seek(0)
        err.seek(0)
        return Cli(os.waitstatus_to_exitcode(status), out.read().decode(errors="replace"),
                   err.read().decode(errors="replace"))
