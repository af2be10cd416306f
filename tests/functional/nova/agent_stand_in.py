"""The SLM agent's part, for computes that run ProgressDriver instead of libvirt.

On a real cloud the per-host agent sets a migration's max speed through
libvirt and measures its guest's dirty rate (``slm_plugin.agent``; proven on
real libvirt and QEMU in tests/e2e and on a real OpenStack in
tests/integration). These in-process computes have no libvirt and no guest, so
this boundary cannot be reached by a real part here: ``DriverActuator`` does
what the agent does, to ProgressDriver's migrations, and ``ActuatedBackend``
puts it into the engine's Nova backend, the one place a job's NovaCloud is
built. Everything between the engine and Nova stays real.
"""

from __future__ import annotations

import threading
import time

from slm_plugin import exception
from slm_plugin.nova.backend import NovaBackend
from tests.functional.nova.progress_driver import CONTROL


class DriverActuator:
    """Max speeds into ProgressDriver (as libvirt would apply them), dirty rates out of
    it (as the agent would measure them), every call recorded."""

    def __init__(self, dirty_mibps: float | None = None):
        self.dirty_mibps = dirty_mibps  # what it reports where CONTROL.dirty says nothing
        self.calls: list[tuple] = []
        self.asked = 0
        self.clouds: list = []  # the NovaClouds of the jobs it served

    def set_cap(self, server_id, host, cap_mibps):
        self.calls.append(('set_cap', server_id, host, cap_mibps))
        job = CONTROL.job(server_id)
        if job is not None and job.switched_over_at is not None:
            # libvirt removes the guest from its source the instant it switches over,
            # seconds before Nova records the end (seen on a real cloud, 2026-12-02)
            # and the agent's actuator raises it as AgentActuator does
            cause = exception.DomainNotFound(f'no guest with UUID {server_id} on {host}')
            raise exception.ActuatorError(f'max speed of {server_id}: {cause}', cause)
        CONTROL.set_cap(server_id, cap_mibps)

    def hold(self, server_id, host, held):
        self.calls.append(('hold', server_id, host, held))

    def dirty_rate(self, server_id, host):
        self.asked += 1
        return CONTROL.dirty.get(server_id, self.dirty_mibps)


class LibvirtFiguresActuator(DriverActuator):
    """Also what the agent reads of libvirt for NovaCloud: the source's job statistics
    at any instant (Nova saves its record every few seconds) and the migration ledger's
    record (agent.ledger: the destination's resume instant, the job's downtime and
    bytes). As on libvirt, a migration has no held state: it switches over by itself
    when it converges (run ProgressDriver with ``hold=False``)."""

    downtime_ms = 42.0  # what libvirt's job-completed statistics say (the fake has none)

    def stats(self, server_id, host):
        job = CONTROL.job(server_id)
        if job is not None and job.switched_over_at is not None:
            cause = exception.DomainNotFound(f'no guest with UUID {server_id} on {host}')
            raise exception.ActuatorError(f'statistics of {server_id}: {cause}', cause)
        if job is None or job.done.is_set():
            return {'active': False}
        total, sent, left = job.live
        return {'active': True, 'memory_total_mib': total, 'memory_processed_mib': sent,
                'memory_remaining_mib': left, 'iteration': job.rounds + 1,
                'throughput_mibps': CONTROL.rate(server_id)}

    def record(self, server_id, host):
        job = CONTROL.job(server_id)
        if job is None or host != job.dest or job.switched_over_at is None:
            return {}
        to_epoch = time.time() - time.monotonic()
        return {'incoming_at': job.started_at + to_epoch,
                'resumed_at': job.switched_over_at + to_epoch,
                'completed_at': job.switched_over_at + to_epoch,
                'completed': {'downtime_ms': self.downtime_ms,
                              'memory_processed_mib': job.live[1]}}


class AwayActuator(DriverActuator):
    """An agent killed mid-job, right after it has set ``after_caps`` max speeds, back
    ``back_after_s`` later (never, by default): meanwhile every cap and hold raises
    what AgentActuator raises when no agent answers, and ProgressDriver keeps the max
    speeds it had, as libvirt keeps a job's."""

    def __init__(self, after_caps: int = 6, back_after_s: float = float('inf'), **kwargs):
        super().__init__(**kwargs)
        self.after_caps = after_caps
        self.back_after_s = back_after_s
        self.away_at: float | None = None
        self.refused: list[tuple[float, str]] = []
        self.after: list[tuple[float, str, float | None]] = []  # caps that landed once back
        self._lock = threading.Lock()

    def _away(self, server_id: str, what: str) -> None:
        with self._lock:
            now = time.monotonic()
            if self.away_at is not None and now < self.away_at + self.back_after_s:
                self.refused.append((now, what))
                cause = exception.AgentUnavailable(
                    f'no SLM agent answered on host of {server_id} within 1 s')
                raise exception.ActuatorError(f'{what} of {server_id}: {cause}', cause)

    def set_cap(self, server_id, host, cap_mibps):
        self._away(server_id, 'max speed')
        super().set_cap(server_id, host, cap_mibps)
        with self._lock:
            if self.away_at is not None:
                self.after.append((time.monotonic(), server_id, cap_mibps))
            elif sum(c[0] == 'set_cap' for c in self.calls) >= self.after_caps:
                self.away_at = time.monotonic()  # that cap landed; now the agent dies

    def hold(self, server_id, host, held):
        self._away(server_id, 'hold')
        super().hold(server_id, host, held)


class ActuatedBackend(NovaBackend):
    """The Nova backend, with each job's NovaCloud given the stand-in for the agent."""

    actuator: DriverActuator

    @classmethod
    def with_actuator(cls, actuator):
        return type('ActuatedBackendOf', (cls,), {'actuator': actuator})

    def job_cloud(self, group, scenario):
        cloud = super().job_cloud(group, scenario)
        cloud.actuator = self.actuator
        self.actuator.clouds.append(cloud)
        return cloud
