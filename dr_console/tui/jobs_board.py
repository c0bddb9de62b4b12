"""What the console knows about jobs on the nodes. Pure: no Textual here.

Jobs are keyed (node, job_id). A switch-wal that closed a WAL waits for a snapshot whose last
archived WAL on that node has reached it: that is the WAL's confirmed arrival.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from dr_console.models import FleetSnapshot, Job

JobKey = tuple[str, str]


@dataclass
class Arrival:
    wal: str
    arrived_at: datetime | None = None  # Barman's time for the last archived WAL, once seen
    confirmed: bool = False


@dataclass
class JobsBoard:
    jobs: dict[JobKey, Job] = field(default_factory=dict)
    node_errors: dict[str, str] = field(default_factory=dict)  # the last listing of a node failed
    listed_at: dict[str, datetime] = field(default_factory=dict)
    watched: set[JobKey] = field(default_factory=set)  # followed in the background
    arrivals: dict[JobKey, Arrival] = field(default_factory=dict)  # switch-wal jobs
    journal_error: str | None = None  # the audit journal could not be written (said once)

    def put(self, job: Job) -> None:
        self.jobs[(job.node, job.job_id)] = job

    def update_node(self, node: str, jobs: list[Job], at: datetime) -> list[Job]:
        """Replace what is known of `node`; returns its running jobs not yet followed."""
        self.node_errors.pop(node, None)
        self.listed_at[node] = at
        for job in jobs:
            old = self.jobs.get((node, job.job_id))
            if old is not None and old.phase and not job.phase:
                job = replace(job, phase=old.phase)
            self.put(job)
        return [j for j in jobs if j.running and (node, j.job_id) not in self.watched]

    def fail_node(self, node: str, error: str) -> None:
        self.node_errors[node] = error

    def ordered(self) -> list[Job]:
        """Running jobs first, then the others; newest first in each group."""
        jobs = sorted(self.jobs.values(), key=lambda j: j.job_id, reverse=True)
        return [j for j in jobs if j.running] + [j for j in jobs if not j.running]

    def expect_arrival(self, job: Job, wal: str) -> None:
        self.arrivals[(job.node, job.job_id)] = Arrival(wal)

    def check_arrivals(self, fleet: FleetSnapshot) -> list[tuple[Job, Arrival]]:
        """Arrivals confirmed by this snapshot (each reported once)."""
        confirmed = []
        for key, arrival in self.arrivals.items():
            job = self.jobs.get(key)
            if arrival.confirmed or job is None or job.server is None:
                continue
            node = fleet.nodes.get(job.node)
            snap = node.servers.get(job.server) if node is not None else None
            queue = snap.archive_queue if snap is not None else None
            last = queue.last_archived_wal if queue is not None else None
            if last is None and snap is not None and snap.status is not None:
                last = snap.status.last_archived_wal
            # WAL names are fixed-width hex: timeline, log, segment, so text order is WAL order.
            if last is not None and last.upper() >= arrival.wal.upper():
                arrival.confirmed = True
                if queue is not None and queue.last_archived_wal == last:
                    arrival.arrived_at = queue.last_archived_time
                elif snap is not None and snap.status is not None:
                    arrival.arrived_at = snap.status.last_archived_time
                confirmed.append((job, arrival))
        return confirmed
