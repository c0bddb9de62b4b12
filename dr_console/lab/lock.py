"""One operation at a time per lab: `up` and `down` hold an flock on the lab's base directory,
so parallel test sessions sharing a lab never build or remove it concurrently. Labs with other
base dirs are not blocked, and a directory lock leaves no file behind."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dr_console.lab.errors import LabError


@contextmanager
def locked(base_dir: Path, create: bool, timeout: float = 900.0) -> Iterator[None]:
    """Hold BASE_DIR's lock (creating the directory when CREATE). When the directory does not
    exist and CREATE is false there is nothing to protect and nothing is locked."""
    deadline = time.monotonic() + timeout
    while True:
        if create:
            base_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(base_dir, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            if create:
                continue  # removed between mkdir and open by a `down`: make it again
            yield
            return
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LabError(f"another lab operation holds {base_dir} for over "
                                       f"{timeout:g} s") from None
                    time.sleep(0.5)
            try:
                same = os.stat(base_dir).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                yield
                return
            # The directory was removed (a `down` finished) while we waited: start over.
        finally:
            os.close(fd)
