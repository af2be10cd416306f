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
import threading
import time

from oslo_log import log as logging
from oslo_utils import timeutils, uuidutils

from slm_plugin import context as slm_context
from slm_plugin import exception, planning
from slm_plugin.control import cloud as api
from slm_plugin.control.loop import ControlLoop, Resume
from slm_plugin.db import api as db
from slm_plugin.db import coordination, states
from slm_plugin.engine.journal import Journal
from slm_plugin.planning import window
from slm_plugin.planning.plan import MemberPlan, Plan
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


def forecast_from_dict(data: dict) -> Plan:
    """The stored plan with the figures its simulation predicted, where it has them."""
    plan = plan_from_dict(data)
    predicted = data.get('predicted') or {}
    rows = []
    for m in plan.members:
        p = predicted.get(m.member)
        rows.append(m if not p else dataclasses.replace(
            m, predicted_start_s=p['start_s'], predicted_switchover_s=p['switchover_s'],
            predicted_downtime_s=p['downtime_s'], predicted_wire_mib=p['wire_mib'],
            completion=p['completion']))
    return dataclasses.replace(plan, members=tuple(rows))


# -- the job's window on the cloud -----------------------------------------------------------


class JobCloud(api.Cloud):
    """One job's view of the shared cloud.

    Only the job's members (other jobs' migrations in the same cloud are none
    of its business, and its loop must never abort them), on a clock that
    starts when the job started. Every start, hold and force is written to
    the database before it is sent, and nothing is sent once the lease may
    have lapsed.
    """

    def __init__(self, cloud, members, t0: float, time_scale: float | None, record, guard,
                 stopping: threading.Event, started=()):
        self._cloud = cloud
        self._members = frozenset(members)
        # the members this job started (or, resumed, its earlier owners did): a cloud that
        # outlives jobs (the simulated one) still shows an earlier job's aborted migration
        # of a member, which is not this job's progress
        self._started = set(started)
        self._t0 = t0
        self._scale = time_scale
        self._record = record
        self._guard = guard
        self._stopping = stopping
        self.cancelling = False
        self.aborted: set[str] = set()  # members whose abort was asked of the cloud
        self._tick_began = None

    def now(self) -> float:
        return self._cloud.now() - self._t0

    def progress(self, members=None) -> dict[str, api.Progress]:
        self._tick_began = time.monotonic()  # the loop looks first in every tick
        everything = self._cloud.progress(members=self._members)
        return {name: self._shift(p) for name, p in everything.items()
                if name in self._members and name in self._started}

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
        except exception.CloudError as exc:
            self._record(START_REFUSED, member, {'error': str(exc)})
            raise
        self._started.add(member)
        handle = self._cloud.handle(member)
        if handle is not None:
            self._record(START_ACCEPTED, member, handle)

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
        except exception.CloudError:
            p = self.progress().get(member)
            if p is None or p.status in (api.MIGRATING, api.HELD):
                raise
            LOG.debug('%s: %s not needed, the migration is %s', member, action.__name__,
                      p.status)

    def abort(self, member):
        self._guard()
        self.cancelling = True
        self._cloud.abort(member)
        self.aborted.add(member)

    @property
    def notes(self):
        return self._cloud.notes

    @property
    def caps_enforced(self):
        return self._cloud.caps_enforced

    def settle(self, timeout_s):
        everything = self._cloud.settle(timeout_s)
        return {name: self._shift(p) for name, p in everything.items()
                if name in self._members and name in self._started}

    def wait(self, seconds):
        """Until the next tick: ticks begin every ``seconds``, however long the work took."""
        if self._scale is None:
            self._cloud.wait(seconds)
            return
        began = self._tick_began if self._tick_began is not None else time.monotonic()
        self._stopping.wait(max(0.0, began + seconds / self._scale - time.monotonic()))


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
        self._final: set[str] = set()
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


class Deadline:
    """What a job with a deadline says as its predicted switchover moves (control.eta).

    The job started with a margin between its predicted switchover and its
    deadline (planning.window): that margin is its budget of time. Once the
    prediction moves past the planned switchover the job runs on that budget,
    and once past the deadline it is behind; each is said once, in an event,
    with the figures.
    """

    def __init__(self, schedule: dict):
        self.complete_by = window.parse(schedule['complete_by'], 'schedule.complete_by')
        self.planned_end = window.parse(schedule['predicted_end_at'],
                                        'schedule.predicted_end_at')
        self._said = set()

    def look(self, eta: float):
        """The event (kind, detail) the prediction ``eta`` calls for, if any is new."""
        detail = {'eta_at': window.iso(eta), 'complete_by': window.iso(self.complete_by),
                  'margin_left_s': round(self.complete_by - eta, 1)}
        if eta > self.complete_by and 'behind' not in self._said:
            self._said.update(('behind', 'margin'))
            LOG.warning('A job is predicted to switch over at %s, after its deadline %s',
                        detail['eta_at'], detail['complete_by'])
            return 'job.behind_deadline', detail
        if eta > self.planned_end + 1.0 and 'margin' not in self._said:
            self._said.add('margin')
            return 'job.using_margin', detail
        return None

    def outcome(self, now: float) -> dict:
        return {'complete_by': window.iso(self.complete_by), 'met': now <= self.complete_by}


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
        self._deadline = None  # the schedule of a job with a window, as it goes

    # -- thread ------------------------------------------------------------------------------

    def run(self) -> None:
        # Thread-local: every log line of this thread names the job (see slm_plugin.cmd.service).
        self.context = slm_context.RequestContext(
            is_admin=True, overwrite=True, resource_uuid=self.job_id,
            request_id=f'req-{uuidutils.generate_uuid()}', db_connection=self.engine.db)
        self._renewed()
        try:
            self._run()
        except (LeaseLost, exception.NotOwner):
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
        schedule = request.get('schedule') or {}
        if job.status == states.PENDING and schedule and not self._wait_for_window(schedule):
            return
        if schedule.get('complete_by'):
            self._deadline = Deadline(schedule)
        backend = self.engine.backend
        resuming = job.status not in (states.PENDING, states.PLANNING)
        try:
            group = backend.find_group(job.server_group_id)
            scenario = backend.scenario(group, request.get('target') or {}, options,
                                       resuming=resuming)
            planner = planning.get(job.strategy)
        except (exception.GroupNotFound, exception.InvalidTarget, exception.MembersBusy,
                exception.PlanError) as exc:
            self._fail_early(job, str(exc))
            return

        tick_s = self.conf.engine.control_tick * (backend.time_scale or 1.0)
        if not resuming:
            if job.status == states.PENDING:
                db.update_job(ctxt, job.id, {'status': states.PLANNING})
            try:
                plan = planner.plan(scenario)
                plan = dataclasses.replace(plan, notes=plan.notes + scenario.notes)
                predicted = forecast(scenario, plan, planner, tick_s=tick_s)
            except exception.PlanError as exc:
                self._fail_early(job, str(exc))
                return
            self._guard()
            cloud = backend.job_cloud(group, scenario)
            t0 = cloud.now()
            epoch = timeutils.utcnow()
            stored = plan_to_dict(plan, predicted)
            stored['clock'] = {'cloud_t0': t0, 'epoch': _iso(epoch),
                               'time_scale': backend.time_scale, 'tick_s': tick_s}
            for m in db.list_members(ctxt, job.id):
                mp = next((p for p in plan.members if p.member == m.name), None)
                if mp is not None:
                    db.update_member(ctxt, m.id, {'destination_host': mp.destination})
            db.update_job(ctxt, job.id, {'status': states.RUNNING, 'plan': stored})
            self.journal = self._journal(epoch, backend, predicted, job)
            self.journal.event('job.started', {'members': len(plan.members), 'engine': me,
                                               'lower_bound_s': plan.lower_bound_s}, at=0.0)
            self.engine.notifier.job_started(ctxt, db.get_job(ctxt, job.id))
            LOG.info('Job %s: %s of group %s, %d members, running', job.id, job.strategy,
                     group.name, len(plan.members))
            resume = Resume()
        else:
            stored = job.plan
            plan = plan_from_dict(stored)
            clock = stored['clock']
            t0 = clock['cloud_t0']
            epoch = datetime.datetime.fromisoformat(clock['epoch'])
            self.journal = self._journal(epoch, backend, forecast_from_dict(stored), job)
            cloud = backend.job_cloud(group, scenario)
            resume = self._resume_state(job, backend, cloud, plan, t0)
            if resume is None:
                return

        job_cloud = JobCloud(cloud, [m.member for m in plan.members], t0, backend.time_scale,
                             record=self._record_action, guard=self._guard,
                             stopping=self.stopping, started=resume.started)
        self.job_cloud = job_cloud
        on_failure = options.get('failure_policy') or self.conf.engine.on_failure
        capacity = {link.name: link.capacity_mibps for link in scenario.links}
        asks = getattr(self.engine, 'link_asks', None)

        def share(mine, job_id=job.id, priority=job.priority):
            """What the engine's jobs of a higher priority leave of the links (shares)."""
            return asks.left_for(job_id, priority, mine, capacity)
        self.loop = ControlLoop(job_cloud, scenario, planner, plan, tick_s=tick_s,
                                on_failure=on_failure, observer=self._observe, resume=resume,
                                steer_retry_s=self.conf.engine.steer_retry_timeout,
                                learn_links=self.conf.engine.learn_link_bandwidth,
                                share=share if asks is not None else None)
        outcome = self.loop.run()
        self._stop_leftovers(job_cloud, outcome)
        settled = job_cloud.settle(self.conf.engine.settle_timeout)
        # the loop's last look came before its aborts landed: the members' rows say
        # where they ended (aborted, not held or migrating)
        self.journal.observe(job_cloud.now(), settled)
        problems = backend.verify(group, request.get('target') or {}, plan, settled)
        if problems:
            self._event('job.verified', {'problems': problems})
        error = None
        if outcome.status != 'completed':
            failures = [f'{m.member}: {m.error}' for m in outcome.members if m.error]
            error = '; '.join(failures + list(outcome.notes)) or None
        final = {'completed': states.COMPLETED, 'aborted': states.ABORTED}.get(
            outcome.status, states.FAILED)
        unfinished = [m.member for m in outcome.members if m.status not in api.RESUMED]
        if final == states.COMPLETED and unfinished:
            # members a previous owner cancelled: the loop sees them final, not migrated
            final = states.ABORTED if self._aborting else states.FAILED
            error = error or f'not migrated: {", ".join(unfinished)}'
        if final == states.COMPLETED and problems:
            final = states.FAILED
            error = '; '.join(problems)
        detail = {'ticks': outcome.ticks, 'notes': list(job_cloud.notes),
                  'members': {m.member: settled[m.member].status
                              if m.member in settled else m.status
                              for m in outcome.members}}
        if self._deadline is not None:
            detail['deadline'] = self._deadline.outcome(time.time())
        self._finish(final, outcome.finished_at, error=error, detail=detail)

    def _wait_for_window(self, schedule: dict) -> bool:
        """Until the instant the job's window says it starts (planning.window), holding
        its lease and minding an abort; False if it was aborted meanwhile."""
        start_at = window.parse(schedule['start_at'], 'schedule.start_at')
        told = False
        while (left := start_at - time.time()) > 0:
            if not told:
                db.add_event(self.context, self.job_id, 'job.waiting',
                             {'start_at': schedule['start_at'],
                              'complete_by': schedule.get('complete_by')})
                LOG.info('Job %s waits %.0f s for its window: it starts at %s', self.job_id,
                         left, schedule['start_at'])
                told = True
            held, abort = coordination.renew_lease(
                self.context, self.job_id, self.conf.host, self.conf.engine.lease_duration)
            if not held:
                raise LeaseLost()
            self._renewed()
            if abort:
                self._finish(states.ABORTED, None, error='aborted before it started')
                return False
            if self.stopping.is_set():
                raise Handover()
            self.stopping.wait(min(left, self.conf.engine.control_tick))
        return True

    def _stop_leftovers(self, job_cloud, outcome):
        """Nothing may be left migrating once the loop is done: a held member would wait
        for a release that never comes. The loop cancels what it sees; a member it could
        not (an abort the cloud refused that early) is aborted again here."""
        for name, p in job_cloud.progress().items():
            if p.status in (api.MIGRATING, api.HELD) and name not in job_cloud.aborted:
                LOG.warning('Job %s: %s is still %s after the loop ended (%s); aborting it',
                            self.job_id, name, p.status, outcome.status)
                try:
                    job_cloud.abort(name)
                except exception.CloudError as exc:
                    LOG.error('Job %s: cannot abort the leftover migration of %s: %s',
                              self.job_id, name, exc)

    def _journal(self, epoch, backend, forecast: Plan, job):
        """The job's journal; ``forecast`` (the plan with its simulated figures) is what
        the group's predicted switchover and progress are measured against."""
        journal = JobJournal(self.context, self.job_id, epoch, backend.time_scale,
                             on_switchover=self._switched_over,
                             progress_interval_s=self.conf.engine.progress_interval)
        journal.plan = forecast
        journal.fraction = job.progress or 0.0  # an earlier owner's: it never goes back
        return journal

    def _resume_state(self, job, backend, cloud, plan, t0):
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
        # a cloud that shows only what it started itself finds the job's migrations
        for name, at in sorted(requested.items()):
            cloud.adopt(name, _timestamp(at), handles.get(name), held=last_hold.get(name, False))
        progress = {n: p for n, p in cloud.progress().items() if n in members}
        if not backend.shared and set(requested) - set(progress):
            self._finish(states.FAILED, None, error=(
                f'the simulated cloud ran inside engine {job.owner or self.previous_owner} and '
                'ended with it; the members it had started cannot be resumed elsewhere '
                '(use [engine] cloud = simulated-rpc to share a cloud between engines)'))
            return None
        # only what a start was asked for: a cloud that outlives jobs may still show an
        # earlier job's migration of a member (the next scan never asks twice: the
        # start is written before it is asked for)
        started = set(requested)
        lost = {}
        for name in sorted(set(requested) - set(progress)):
            lost[name] = ('its start was asked of the cloud by the previous owner, but the cloud '
                          'has no migration for it; not started again')
            self._event('member.start_lost', {'reason': lost[name]}, member=name)
        self._event('job.resumed', {'started': sorted(started), 'forced': sorted(forced),
                                    'lost': sorted(lost)})
        # every member that may have been held gets its hold decision sent again
        held.update({n: None for n in progress})
        return Resume(started=frozenset(started), forced=frozenset(forced), held=held,
                      lost=lost)

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
        if self._deadline is not None and self.journal.eta_at is not None:
            said = self._deadline.look(_timestamp(self.journal.eta_at))
            if said:
                self._event(*said)

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
