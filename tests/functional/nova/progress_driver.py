"""A Nova virt driver whose live migrations take time, report progress and wait when held.

Name it in ``[DEFAULT] compute_driver`` as
``tests.functional.nova.progress_driver.ProgressDriver``. Everything else is
Nova's ``MediumFakeDriver`` (8 GiB, 10 vCPUs per host, no real guests).

A live migration here behaves like a pre-copy migration seen through
libvirt's job statistics:

* block migration copies the disk first (flavor root + ephemeral disk), then
  memory is sent in rounds: round 0 is all of the flavor's memory, each later
  round what the guest dirtied during the previous one (``dirty_mibps`` times
  the round's length, at most all of memory);
* it moves ``rate_mibps`` MiB a second, which the test may change at any time
  (per server or for all), or less where a max speed is set (``set_cap``, what
  the SLM agent does through libvirt; tests/functional/nova/agent_stand_in.py);
* every ``STATS_INTERVAL_S`` it writes ``memory_total/processed/remaining``
  and ``disk_total/processed/remaining`` (bytes) into the migration record,
  as Nova's libvirt driver does, so they show in
  ``GET /servers/{id}/migrations``;
* a round of at most ``converge_mib`` is where it has converged. With
  ``hold`` set (the default) it then waits, still sending what the guest
  dirties, until a force-complete or an abort reaches it through Nova's API
  (``live_migration_force_complete`` / ``live_migration_abort``); with
  ``hold`` cleared it switches over by itself, as a hypervisor does;
* ``job_start_s`` delays the hypervisor's job that long after Nova has marked
  the migration ``running`` (libvirt's migration job starts in a thread of its
  own); an abort that comes before the job exists fails in the compute service,
  as libvirt's "no job is active on the domain" does, and Nova's API has
  answered it with 202 all the same;
* ``post_s`` is how long after the switchover Nova learns of it (its record stays
  ``running``), as with libvirt, whose post-migration steps take seconds;
* ``fail_at`` makes a server's migration fail once that fraction of its
  memory is sent: the guest stays on its source host and the migration ends
  in ``error``, as when libvirt reports a failed job.

The test drives it through the module's ``CONTROL``; drivers on every host in
the process share it. ``CONTROL.jobs`` keeps, per server, when things happened
on the hypervisor side (converged, forced, switched over), the ground truth
the tests compare with what the plugin saw through the API.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from nova.virt import fake
from oslo_db import exception as db_exc
from sqlalchemy import exc as sa_exc

MIB = 1024 * 1024
STEP_S = 0.02  # how often a migration advances
STATS_INTERVAL_S = 0.1  # how often it writes its statistics into the migration record


@dataclass
class Job:
    """One live migration as the hypervisor side sees it (times on time.monotonic())."""

    server: str
    source: str
    dest: str
    block_migration: bool
    memory_mib: float
    disk_mib: float
    started_at: float
    rounds: int = 0
    converged_at: float | None = None
    forced_at: float | None = None
    aborted_at: float | None = None
    switched_over_at: float | None = None
    failed_at: float | None = None
    #: memory total, sent (all rounds) and left in the round, MiB, at every step: what
    #: libvirt's job statistics say at any instant (Nova's record is saved less often)
    live: tuple[float, float, float] = (0.0, 0.0, 0.0)
    force: threading.Event = field(default_factory=threading.Event)
    abort: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)


class Control:
    """What the test sets, and what the drivers report back. Thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.history: list[Job] = []
        self.reset()

    def reset(self, rate_mibps: float = 512.0, hold: bool = True, converge_mib: float = 1.0):
        """Back to defaults; migrations still running are cancelled first and waited for."""
        self._cancel_running()
        with self.lock:
            self.closed = False
            self.rate_mibps = rate_mibps
            self.rates: dict[str, float] = {}
            self.caps: dict[str, float] = {}  # max speed per server (libvirt's, via the agent)
            self.dirty: dict[str, float] = {}
            self.fail_at: dict[str, float] = {}
            self.hold = hold
            self.converge_mib = converge_mib
            # as Nova 34's libvirt driver: after the rollback of a cancelled migration
            # it raises, and the compute manager puts the migration and instance in error
            self.error_after_abort = False
            self.job_start_s = 0.0
            self.post_s = 0.0  # guest at the destination, Nova not yet told (libvirt: seconds)
            self.jobs: dict[str, Job] = {}
            self.history: list[Job] = []

    def close(self) -> None:
        """At the end of a test, before Nova's database and executors go away: cancel
        what runs, and every migration that reaches the driver from now on. A migration
        Nova accepted late in a test may reach the driver only after this; with the
        default hold it would run until Nova's executor shutdown gave up (seen in CI:
        a test stuck 300 s in its cleanup)."""
        with self.lock:
            self.closed = True
        self._cancel_running()

    def _cancel_running(self) -> None:
        running = [job for job in self.history if not job.done.is_set()]
        for job in running:
            job.abort.set()
        for job in running:
            job.done.wait(60)

    def rate(self, server: str) -> float:
        with self.lock:
            return min(self.rates.get(server, self.rate_mibps),
                       self.caps.get(server, float('inf')))

    def set_cap(self, server: str, cap_mibps: float | None) -> None:
        """The migration's max speed, as virDomainMigrateSetMaxSpeed sets it (None lifts it)."""
        with self.lock:
            if cap_mibps is None:
                self.caps.pop(server, None)
            else:
                self.caps[server] = max(1.0, float(cap_mibps))  # libvirt: whole MiB/s, >= 1

    def set_rate(self, server: str | None, mibps: float) -> None:
        with self.lock:
            if server is None:
                self.rate_mibps = mibps
            else:
                self.rates[server] = mibps

    def job(self, server: str) -> Job | None:
        with self.lock:
            return self.jobs.get(server)

    def _begin(self, job: Job) -> None:
        with self.lock:
            if self.closed:
                job.abort.set()
            self.jobs[job.server] = job
            self.history.append(job)


CONTROL = Control()


class ProgressDriver(fake.MediumFakeDriver):
    """MediumFakeDriver with timed, observable, holdable live migrations."""

    def live_migration(self, context, instance, dest, post_method, recover_method,
                       block_migration=False, migrate_data=None):
        time.sleep(CONTROL.job_start_s)
        flavor = instance.flavor
        migration = migrate_data.migration
        job = Job(
            server=instance.uuid, source=migration.source_compute, dest=dest,
            block_migration=bool(block_migration),
            memory_mib=float(flavor.memory_mb),
            disk_mib=float((flavor.root_gb + flavor.ephemeral_gb) * 1024)
            if block_migration else 0.0,
            started_at=time.monotonic(),
        )
        CONTROL._begin(job)
        try:
            outcome = _Copy(job, migration).run()
            if outcome == 'cancelled':
                recover_method(context, instance, dest, migrate_data,
                               migration_status='cancelled')
                if CONTROL.error_after_abort:
                    time.sleep(1.0)
                    raise RuntimeError("job 'migration out' canceled by client")
            elif outcome == 'error':
                recover_method(context, instance, dest, migrate_data)
            else:
                job.switched_over_at = time.monotonic()
                time.sleep(CONTROL.post_s)
                post_method(context, instance, dest, block_migration, migrate_data)
        finally:
            job.done.set()

    def live_migration_force_complete(self, instance):
        job = CONTROL.job(instance.uuid)
        if job is not None and job.forced_at is None:
            job.forced_at = time.monotonic()
            job.force.set()

    def live_migration_abort(self, instance):
        job = CONTROL.job(instance.uuid)
        if job is None or job.done.is_set():
            raise RuntimeError('Requested operation is not valid: no job is active on the domain')
        job.aborted_at = time.monotonic()
        job.abort.set()

    def post_live_migration(self, context, instance, block_device_info, migrate_data=None):
        # On the source, once the guest runs at the destination: forget it here.
        self.destroy(context, instance, network_info=None, block_device_info=block_device_info)


class _Copy:
    """The copy loop of one migration: disk, then memory rounds, then hold or switch over."""

    def __init__(self, job: Job, migration):
        self.job = job
        self.migration = migration
        self.disk_left = job.disk_mib
        self.disk_sent = 0.0
        self.memory_sent = 0.0  # all rounds: can exceed memory_total, as in libvirt
        self.round_size = job.memory_mib
        self.round_left = job.memory_mib
        self.round_began = time.monotonic()
        self.last_stats = 0.0

    def run(self) -> str:
        job = self.job
        last = time.monotonic()
        while True:
            if job.abort.is_set():
                return 'cancelled'
            if job.force.is_set():
                self._save(force=True)
                return 'completed'
            now = time.monotonic()
            budget = CONTROL.rate(job.server) * (now - last)
            last = now
            self._advance(budget, now)
            job.live = (job.memory_mib, self.memory_sent, max(self.round_left, 0.0))
            limit = CONTROL.fail_at.get(job.server)
            if limit is not None and self.memory_sent >= limit * job.memory_mib:
                job.failed_at = now
                self._save(force=True)
                return 'error'
            if job.converged_at is not None and not CONTROL.hold:
                self._save(force=True)
                return 'completed'
            self._save()
            time.sleep(STEP_S)

    def _advance(self, budget: float, now: float) -> None:
        job = self.job
        if self.disk_left > 0:
            step = min(budget, self.disk_left)
            self.disk_left -= step
            self.disk_sent += step
            budget -= step
            if budget <= 0:
                return
        dirty = CONTROL.dirty.get(job.server, 0.0)
        if job.converged_at is not None:
            # held: keep sending what the guest dirties, so the dirty set stays small
            self.memory_sent += min(budget, dirty * STEP_S)
            self.round_left = min(dirty * STEP_S, self.round_size)
            return
        while budget > 0:
            step = min(budget, self.round_left)
            self.round_left -= step
            self.memory_sent += step
            budget -= step
            if self.round_left > 1e-9:
                return
            self.memory_sent += self.round_left  # what float rounding left of it
            # the round is sent: the next one carries what was dirtied meanwhile
            job.rounds += 1
            length = now - self.round_began
            self.round_began = now
            self.round_size = min(dirty * length, job.memory_mib)
            self.round_left = self.round_size
            if self.round_size <= CONTROL.converge_mib:
                job.converged_at = now
                self.round_left = self.round_size
                return

    def _save(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_stats < STATS_INTERVAL_S:
            return
        self.last_stats = now
        m = self.migration
        m.memory_total = int(self.job.memory_mib * MIB)
        m.memory_processed = round(self.memory_sent * MIB)  # whole bytes, as libvirt counts
        m.memory_remaining = round(max(self.round_left, 0.0) * MIB)
        m.disk_total = int(self.job.disk_mib * MIB)
        m.disk_processed = int(self.disk_sent * MIB)
        m.disk_remaining = int(self.disk_left * MIB)
        # Nova's test fixtures keep its database in SQLite, where the API's reads of the
        # migration (every control tick, per member) and this write can collide: "database
        # is locked" failed a migration in a loaded CI run. libvirt's driver writes the same
        # record on MySQL, which waits instead; so does this, for a while.
        for attempt in range(50):
            try:
                m.save()
                return
            except (db_exc.DBError, sa_exc.OperationalError) as exc:
                if 'database is locked' not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.1)
