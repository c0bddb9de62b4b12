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
from dr_console.core.restored_fix import (
    ConfCorrection,
    needs_restore_command_written,
    needs_sudo_correction,
    remove_restore_command_sudo,
    write_restore_command,
)
from dr_console.core.transport_base import TransportError
from dr_console.core.transport_relay import RelayTransport
from dr_console.models import Job

LOG_KEEP_LINES = 400
FIX_TIMEOUT = 60.0  # for each correction of the restored configuration


class RecoverFailed(Exception):
    """barman recover ended badly or timed out; the message carries Barman's last lines."""


@dataclass(frozen=True)
class RecoverRun:
    job: Job
    exit_status: int | None
    seconds: float
    log_tail: tuple[str, ...]
    # What drconsole changed in the restored files (e.g. the sudo an older Barman writes)
    corrections: tuple[ConfCorrection, ...] = ()

    @property
    def checklist_notes(self) -> dict[str, str]:
        """Checklist item key -> what was corrected there, for post_recovery_checklist."""
        return {c.key: c.describe() for c in self.corrections}


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
    corrections = await _correct_restored_conf(jobs, plan)
    for fixed in corrections:
        if on_line is not None:
            on_line(f"drconsole: restore_command {fixed.before} -> {fixed.after}")
    return RecoverRun(
        job=job,
        exit_status=status,
        seconds=seconds,
        log_tail=tuple(lines),
        corrections=tuple(corrections),
    )


async def _correct_restored_conf(jobs: JobManager, plan: RecoveryPlan) -> list[ConfCorrection]:
    """What an older Barman wrote wrong into the restored configuration, put right."""
    capabilities = plan.capabilities
    if capabilities is None or not plan.options.get_wal:
        return []
    dest = plan.destination
    here = jobs.transports[plan.node]
    try:
        if needs_restore_command_written(capabilities, plan.spec.restore_command):
            assert plan.spec.restore_command is not None
            transport = here
            if dest.remote and dest.ssh_target is not None:
                transport = RelayTransport(here, dest.ssh_target)
            return [await write_restore_command(
                transport, dest.path, plan.spec.restore_command, capabilities, FIX_TIMEOUT
            )]
        if needs_sudo_correction(capabilities, remote=dest.remote):
            fixed = await remove_restore_command_sudo(here, dest.path, capabilities, FIX_TIMEOUT)
            return [fixed] if fixed is not None else []
    except TransportError as exc:
        raise RecoverFailed(f"the recovery succeeded, but {exc}") from None
    return []
