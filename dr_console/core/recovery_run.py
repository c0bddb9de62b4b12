"""Running a planned `barman recover` as a detached job (core.jobs) and following its log.

This is the one place the recovery is launched, so the TUI, the headless command and the drill
share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from dr_console.core.jobs import JobManager
from dr_console.core.recovery import RecoveryPlan
from dr_console.models import Job

LOG_KEEP_LINES = 400


class RecoverFailed(Exception):
    """barman recover ended badly or timed out; the message carries Barman's last lines."""


@dataclass(frozen=True)
class RecoverRun:
    job: Job
    exit_status: int | None
    seconds: float
    log_tail: tuple[str, ...]


async def run_recover(
    jobs: JobManager,
    plan: RecoveryPlan,
    *,
    timeout: float,
    on_line: Callable[[str], None] | None = None,
) -> RecoverRun:
    """Start the recovery job, follow its output until it ends; RecoverFailed if it fails."""
    started = time.monotonic()
    job = await jobs.start(plan.node, plan.server, "recover", list(plan.argv))
    lines: list[str] = []

    async def follow() -> None:
        async for line in jobs.tail(job):
            lines.append(line)
            del lines[:-LOG_KEEP_LINES]
            if on_line is not None:
                on_line(line)

    try:
        async with asyncio.timeout(timeout):
            await follow()
            status = await jobs.wait(job, poll=0.3, timeout=30)
    except TimeoutError:
        with contextlib.suppress(Exception):
            await jobs.cancel(job)
        raise RecoverFailed(
            f"barman recover (job {job.job_id} on {job.node}) did not finish within "
            f"{timeout:g} s and was cancelled"
        ) from None
    seconds = time.monotonic() - started
    if status != 0:
        errors = [ln for ln in lines if ln.startswith(("ERROR", "EXCEPTION"))]
        detail = "\n".join(errors[-3:] or lines[-5:])
        raise RecoverFailed(
            f"barman recover failed (job {job.job_id} on {job.node}, exit status {status}):\n"
            f"{detail}"
        )
    return RecoverRun(job=job, exit_status=status, seconds=seconds, log_tail=tuple(lines))
