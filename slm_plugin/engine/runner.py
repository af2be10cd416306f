"""One job's life in an engine: plan it, run its control loop, record it, hand it over.

A JobRunner runs in a thread of its own while the engine holds the job's
lease. It writes everything that happens to the database as it happens:

* the status (pending, planning, running, then a final one), the plan with
  the predicted figures, and each member's destination;
* before every start, force-complete or hold it asks of the cloud, an event
  saying so (``member.start_requested`` ...), so that an engine taking the
  job over knows what was asked even if the cloud never heard of it;
* each member's progress through the Journal: started, held, switched over,
  with the instants, bytes and downtime.

Taking a job over (its lease expired: its engine died or lost the database)
rebuilds the loop from the stored plan and from what the cloud reports: the
members the cloud shows, or the previous owner asked to start, are never
started again.
"""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import threading
import time

from oslo_log import log as logging
from oslo_utils import timeutils, uuidutils

from slm_plugin import context as slm_context
from slm_plugin import planning
from slm_plugin.db import api as db
from slm_plugin.db import coordination, states
from slm_plugin.engine import clouds
from slm_plugin.engine.journal import Journal
from slm_plugin.execution import cloud as api
from slm_plugin.execution.loop import ControlLoop
from slm_plugin.planning.plan import MemberPlan, Plan, PlanError
from slm_plugin.simulation.runner import forecast

LOG = logging.getLogger(__name__)

START_REQUESTED = 'member.start_requested'
FORCE_REQUESTED = 'member.force_requested'
HOLD_REQUESTED = 'member.hold_requested'
START_REFUSED = 'member.start_refused'
START_ACCEPTED = 'member.start_accepted'  # with what finds the migration again
LEASE_MARGIN = 0.8  # act only within this share of the lease since it was last renewed


class LeaseLost(Exception):
    """Another engine owns the job now, or it ended: stop acting on it at once."""


class Handover(Exception):
    """This engine is stopping: leave the job, as it is, to another engine."""


# -- plans in the database ------------------------------------------------------------------


def plan_to_dict(plan: Plan, predicted: Plan | None = None) -> dict:
    out = {
        'strategy': plan.strategy,
        'lower_bound_s': plan.lower_bound_s,
        'notes': list(plan.notes),
        'members': [dataclasses.asdict(m) for m in plan.members],
    }
    if predicted is not None:
        out['predicted'] = {m.member: {
            'start_s': m.predicted_start_s, 'switchover_s': m.predicted_switchover_s,
            'downtime_s': m.predicted_downtime_s, 'wire_mib': m.predicted_wire_mib,
            'completion': m.completion,
        } for m in predicted.members}
        out['notes'] = list(dict.fromkeys(out['notes'] + list(predicted.notes)))
    return out


def plan_from_dict(data: dict) -> Plan:
    return Plan(strategy=data['strategy'],
                members=tuple(MemberPlan(**m) for m in data['members']),
                lower_bound_s=data['lower_bound_s'], notes=tuple(data.get('notes', ())))


# -- the job's window on the cloud -----------------------------------------------------------


class JobCloud:
    """One job's view of the shared cloud.

    Only the job's members (other jobs' migrations in the same cloud are none
    of its business, and its loop must never abort them), on a clock that
    starts when the job started. Every start, hold and force is written to
    the database before it is sent, and nothing is sent once the lease may
    have lapsed.
    """

    def __init__(self, cloud, members, t0: float, time_scale: float | None, record, guard,
                 stopping: threading.Event):
        self._cloud = cloud
        self._members = frozenset(members)
        self._t0 = t0
        self._scale = time_scale
        self._record = record
        self._guard = guard
        self._stopping = stopping
        self.cancelling = False
        self._filters = 'members' in inspect.signature(cloud.progress).parameters
        self._tick_began = None

    def now(self) -> float:
        return self._cloud.now() - self._t0

    def progress(self) -> dict[str, api.Progress]:
        self._tick_began = time.monotonic()  # the loop looks first in every tick
        if self._filters:
            everything = self._cloud.progress(members=self._members)
        else:
            everything = self._cloud.progress()
        return {name: self._shift(p) for name, p in everything.items() if name in self._members}

    def _shift(self, p: api.Progress) -> api.Progress:
        t0 = self._t0
        if not t0:
            return p

        def back(t):
            return None if t is None else t - t0
        return dataclasses.replace(
            p, started_at=p.started_at - t0, round_started_at=back(p.round_started_at),
            switchover_at=back(p.switchover_at), finished_at=back(p.finished_at))

    def start(self, member, destination, cap_mibps):
        self._guard()
        self._record(START_REQUESTED, member, {'destination': destination, 'cap_mibps': cap_mibps})
        try:
            self._cloud.start(member, destination, cap_mibps)
        except api.CloudError as exc:
            self._record(START_REFUSED, member, {'error': str(exc)})
            raise
        handle = getattr(self._cloud, 'handle', None)
        if handle is not None:
            self._record(START_ACCEPTED, member, handle(member))

    def set_cap(self, member, cap_mibps):
        self._guard()
        self._steer(self._cloud.set_cap, member, cap_mibps)

    def hold(self, member, held):
        self._guard()
        self._record(HOLD_REQUESTED, member, {'held': held})
        self._steer(self._cloud.hold, member, held)

    def force_complete(self, member, mode):
        self._guard()
        self._record(FORCE_REQUESTED, member, {'mode': mode})
        self._steer(self._cloud.force_complete, member, mode)

    def _steer(self, action, member, *args):
        """Steer a migration; moot, not an error, if it ended since the loop looked.

        The cloud's clock runs while the loop decides: a migration may finish
        between the progress the decision was made on and the call.
        """
        try:
            action(member, *args)
        except api.CloudError:
            p = self.progress().get(member)
            if p is None or p.status in (api.MIGRATING, api.HELD):
                raise
            LOG.debug('%s: %s not needed, the migration is %s', member, action.__name__,
                      p.status)

    def abort(self, member):
        self._guard()
        self.cancelling = True
        self._cloud.abort(member)

    def wait(self, seconds):
        """Until the next tick: ticks begin every ``seconds``, however long the work took."""
        if self._scale is None:
            self._cloud.wait(seconds)
            return
        began = self._tick_began if self._tick_began is not None else time.monotonic()
        self._stopping.wait(max(0.0, began + seconds / self._scale - time.monotonic()))


class ResumedLoop(ControlLoop):
    """A control loop that carries on where another one stopped.

    The loop keeps what it has asked of the cloud in memory; an engine taking
    a job over restores it from the cloud's progress and the job's events:
    started members are not started again (and are steered: capped, held,
    released), forced members are not forced twice, and a member whose start
    was asked for but that the cloud never started counts as failed, since
    starting it again could start it twice.
    """

    def __init__(self, *args, started=(), forced=(), held=None, lost=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._started.update(started)
        self._forced.update(forced)
        # None differs from both answers: the first hold decision is sent again
        self._held.update(held or {})
        self._errors.update(lost or {})


class JobJournal(Journal):
    """The Journal of a job the API created, possibly resumed after a takeover.

    Cloud seconds become wall-clock instants from the job's start through the
    cloud's time scale, so that the members' instants and the engine's own
    events (takeovers, abort requests) read on one timeline.
    """

    def __init__(self, context, job_id: str, epoch: datetime.datetime, time_scale: float | None,
                 on_switchover=None, progress_interval_s: float = 2.0):
        # not Journal.__init__: that one creates the job, this one attaches to it
        self.context = context
        self.epoch = epoch
        self.time_scale = time_scale or 1.0
        self.job_id = job_id
        members = db.list_members(context, job_id)
        self.member_ids = {m.name: m.id for m in members}
        self._state = {m.name: m.state for m in members}
        self._on_switchover = on_switchover
        self.progress_interval_s = progress_interval_s * self.time_scale

    def at(self, seconds: float) -> datetime.datetime:
        return self.epoch + datetime.timedelta(seconds=seconds / self.time_scale)

    def _record(self, name, p, new, now):
        super()._record(name, p, new, now)
        if new == states.SWITCHED_OVER and self._on_switchover:
            self._on_switchover(name)


def _iso(t: datetime.datetime) -> str:
    return t.isoformat()


def _timestamp(t: datetime.datetime) -> float:
    """Seconds since the epoch of a naive UTC instant from the database."""
    return t.replace(tzinfo=datetime.UTC).timestamp()


class JobRunner:
    """Runs one claimed job to its end, or until the engine loses or leaves it."""

    def __init__(self, engine, job_id: str, previous_owner: str | None):
        self.engine = engine
        self.conf = engine.conf
        self.job_id = job_id
        self.previous_owner = previous_owner
        self.stopping = threading.Event()
        self.loop: ControlLoop | None = None
        self._lease_until = 0.0
        self._aborting = False
        self.context = None

    # -- thread ------------------------------------------------------------------------------

    def run(self) -> None:
        # Thread-local: every log line of this thread names the job (see slm_plugin.cmd.service).
        self.context = slm_context.RequestContext(
            is_admin=True, overwrite=True, resource_uuid=self.job_id,
            request_id=f'req-{uuidutils.generate_uuid()}', db_connection=self.engine.db)
        self._renewed()
        try:
            self._run()
        except (LeaseLost, coordination.NotOwner):
            LOG.warning('Lost the lease of job %s: another engine runs it now, or it ended; '
                        'leaving it', self.job_id)
        except Handover:
            self._hand_over('engine stopping')
        except Exception as exc:
            LOG.exception('Job %s interrupted: %s', self.job_id, exc)
            self._interrupted(exc)
        finally:
            self.engine.runner_done(self)

    def stop(self) -> None:
        """Leave the job at the next tick without touching its migrations."""
        self.stopping.set()

    def _renewed(self):
        self._lease_until = time.monotonic() + LEASE_MARGIN * self.conf.engine.lease_duration

    def _guard(self):
        if time.monotonic() > self._lease_until:
            raise LeaseLost()

    def _event(self, kind, detail=None, member=None):
        member_id = self.journal.member_ids.get(member) if member else None
        db.add_event(self.context, self.job_id, kind, detail, member_id=member_id,
                     at=timeutils.utcnow())

    # -- the job -----------------------------------------------------------------------------

    def _run(self):
        ctxt = self.context
        me = self.conf.host
        job = db.get_job(ctxt, self.job_id)
        if job.status in coordination.FINAL:  # ended (aborted) between our claim and now
            LOG.info('Job %s has ended (%s) meanwhile; nothing to do', job.id, job.status)
            return
        taken_over = bool(self.previous_owner and self.previous_owner != me)
        db.add_event(ctxt, self.job_id, 'job.taken_over' if taken_over else 'job.claimed',
                     {'engine': me, 'from': self.previous_owner, 'status': job.status})
        if taken_over:
            LOG.info('Taking over job %s (%s) from engine %s', job.id, job.status,
                     self.previous_owner)
        request = job.request or {}
        options = request.get('options') or {}
        if job.status in (states.PENDING, states.PLANNING) and \
                coordination.abort_requested(ctxt, job.id):
            self._finish(states.ABORTED, None, error='aborted before it started')
            return
        driver = self.engine.driver
        resuming = job.status not in (states.PENDING, states.PLANNING)
        try:
            group = driver.find_group(job.server_group_id)
            scenario = driver.scenario(group, request.get('target') or {}, options,
                                       resuming=resuming)
            planner = planning.get(job.strategy)
        except (clouds.GroupNotFound, clouds.InvalidTarget, PlanError) as exc:
            self._fail_early(job, str(exc))
            return

        tick_s = self.conf.engine.control_tick * (driver.time_scale or 1.0)
        if not resuming:
            if job.status == states.PENDING:
                db.update_job(ctxt, job.id, {'status': states.PLANNING})
            try:
                plan = planner.plan(scenario)
                plan = dataclasses.replace(plan, notes=plan.notes + scenario.notes)
                predicted = forecast(scenario, job.strategy, tick_s=tick_s)
            except PlanError as exc:
                self._fail_early(job, str(exc))
                return
            self._guard()
            cloud = driver.cloud_for(group, scenario)
            t0 = cloud.now()
            epoch = timeutils.utcnow()
            stored = plan_to_dict(plan, predicted)
            stored['clock'] = {'cloud_t0': t0, 'epoch': _iso(epoch),
                               'time_scale': driver.time_scale, 'tick_s': tick_s}
            for m in db.list_members(ctxt, job.id):
                mp = next((p for p in plan.members if p.member == m.name), None)
                if mp is not None:
                    db.update_member(ctxt, m.id, {'destination_host': mp.destination})
            db.update_job(ctxt, job.id, {'status': states.RUNNING, 'plan': stored})
            self.journal = self._journal(epoch, driver)
            self.journal.event('job.started', {'members': len(plan.members), 'engine': me,
                                               'lower_bound_s': plan.lower_bound_s}, at=0.0)
            self.engine.notifier.job_started(ctxt, db.get_job(ctxt, job.id))
            LOG.info('Job %s: %s of group %s, %d members, running', job.id, job.strategy,
                     group.name, len(plan.members))
            resume = {}
        else:
            stored = job.plan
            plan = plan_from_dict(stored)
            clock = stored['clock']
            t0 = clock['cloud_t0']
            epoch = datetime.datetime.fromisoformat(clock['epoch'])
            self.journal = self._journal(epoch, driver)
            cloud = driver.cloud_for(group, scenario)
            resume = self._resume_state(job, driver, cloud, plan, t0)
            if resume is None:
                return

        job_cloud = JobCloud(cloud, [m.member for m in plan.members], t0, driver.time_scale,
                             record=self._record_action, guard=self._guard,
                             stopping=self.stopping)
        self.job_cloud = job_cloud
        on_failure = options.get('failure_policy') or self.conf.engine.on_failure
        self.loop = ResumedLoop(job_cloud, scenario, planner, plan, tick_s=tick_s,
                                on_failure=on_failure, observer=self._observe, **resume)
        outcome = self.loop.run()
        error = None
        if outcome.status != 'completed':
            problems = [f'{m.member}: {m.error}' for m in outcome.members if m.error]
            error = '; '.join(problems + list(outcome.notes)) or None
        final = {'completed': states.COMPLETED, 'aborted': states.ABORTED}.get(
            outcome.status, states.FAILED)
        unfinished = [m.member for m in outcome.members if m.status not in api.RESUMED]
        if final == states.COMPLETED and unfinished:
            # members a previous owner cancelled: the loop sees them final, not migrated
            final = states.ABORTED if self._aborting else states.FAILED
            error = error or f'not migrated: {", ".join(unfinished)}'
        self._finish(final, outcome.finished_at, error=error,
                     detail={'ticks': outcome.ticks,
                             'members': {m.member: m.status for m in outcome.members}})

    def _journal(self, epoch, driver):
        return JobJournal(self.context, self.job_id, epoch, driver.time_scale,
                          on_switchover=self._switched_over,
                          progress_interval_s=self.conf.engine.progress_interval)

    def _resume_state(self, job, driver, cloud, plan, t0):
        """What the previous owner left: the loop's memory, rebuilt; None if it cannot go on."""
        events = db.list_events(self.context, job.id)
        names = {mid: name for name, mid in self.journal.member_ids.items()}
        requested, forced, held = {}, set(), {}
        handles, last_hold = {}, {}
        for e in events:
            name = names.get(e.member_id)
            if name is None:
                continue
            if e.kind == START_REQUESTED:
                requested[name] = e.at
            elif e.kind == START_ACCEPTED:
                handles[name] = e.detail or {}
            elif e.kind == FORCE_REQUESTED:
                forced.add(name)
            elif e.kind == HOLD_REQUESTED:
                held[name] = None
                last_hold[name] = bool((e.detail or {}).get('held'))
        members = {m.member for m in plan.members}
        adopt = getattr(cloud, 'adopt', None)
        if adopt is not None:
            # a cloud that shows only what it started itself: find the job's migrations
            for name, at in sorted(requested.items()):
                adopt(name, _timestamp(at), handles.get(name),
                      held=last_hold.get(name, False))
        progress = {n: p for n, p in cloud.progress().items() if n in members}
        if not driver.shared and set(requested) - set(progress):
            self._finish(states.FAILED, None, error=(
                f'the simulated cloud ran inside engine {job.owner or self.previous_owner} and '
                'ended with it; the members it had started cannot be resumed elsewhere '
                '(use [engine] cloud = simulated-rpc to share a cloud between engines)'))
            return None
        started = set(requested) | set(progress)
        lost = {}
        for name in sorted(set(requested) - set(progress)):
            lost[name] = ('its start was asked of the cloud by the previous owner, but the cloud '
                          'has no migration for it; not started again')
            self._event('member.start_lost', {'reason': lost[name]}, member=name)
        self._event('job.resumed', {'started': sorted(started), 'forced': sorted(forced),
                                    'lost': sorted(lost)})
        # every member that may have been held gets its hold decision sent again
        held.update({n: None for n in progress})
        return {'started': started, 'forced': forced, 'held': held, 'lost': lost}

    # -- each tick ---------------------------------------------------------------------------

    def _observe(self, now, progress):
        if self.stopping.is_set() and not (self._aborting or self.job_cloud.cancelling):
            raise Handover()
        held, abort = coordination.renew_lease(
            self.context, self.job_id, self.conf.host, self.conf.engine.lease_duration)
        if not held:
            raise LeaseLost()
        self._renewed()
        if abort and not self._aborting:
            self._aborting = True
            LOG.info('Job %s: abort requested; cancelling the migrations that have not '
                     'switched over', self.job_id)
            self.loop.request_abort()
        self.journal.observe(now, progress)

    def _record_action(self, kind, member, detail):
        self._event(kind, detail, member=member)

    def _switched_over(self, name):
        member_id = self.journal.member_ids[name]
        self.engine.notifier.member_switched_over(
            self.context, self.job_id, db.get_member(self.context, member_id))

    # -- endings -----------------------------------------------------------------------------

    def _finish(self, status, now, error=None, detail=None):
        journal = getattr(self, 'journal', None)

        def record():
            if journal is not None and now is not None:
                journal.event(f'job.{status}', detail, at=now)
            else:
                db.add_event(self.context, self.job_id, f'job.{status}', detail)
        job = coordination.finish_job(self.context, self.job_id, status, error=error,
                                      record=record, owner=self.conf.host)
        LOG.info('Job %s %s%s', self.job_id, status, f': {error}' if error else '')
        self.engine.notifier.job_ended(self.context, job)

    def _fail_early(self, job, error):
        self._finish(states.FAILED, None, error=error)

    def _hand_over(self, why):
        try:
            if coordination.release_lease(self.context, self.job_id, self.conf.host):
                db.add_event(self.context, self.job_id, 'job.released',
                             {'engine': self.conf.host, 'why': why})
                LOG.info('Job %s left to another engine (%s)', self.job_id, why)
        except Exception:
            LOG.exception('Could not release the lease of job %s; it expires by itself',
                          self.job_id)

    def _interrupted(self, exc):
        try:
            events = db.list_events(self.context, self.job_id)
            count = 1 + sum(e.kind == 'job.interrupted' for e in events)
            db.add_event(self.context, self.job_id, 'job.interrupted',
                         {'engine': self.conf.host, 'error': str(exc)[:2000], 'count': count})
            if count >= self.conf.engine.max_interruptions:
                self._finish(states.FAILED, None,
                             error=f'interrupted {count} times; last: {exc}')
            else:
                self._hand_over(f'interrupted: {exc}')
        except Exception:
            LOG.exception('Could not record the interruption of job %s', self.job_id)
