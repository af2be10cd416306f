"""Write a job's story to the database as the control loop observes it.

The loop reports progress every tick; the journal records only changes: a
member's state moving forward, its switchover instant, bytes and downtime,
with one event per change, so the database tells what happened and when.
Cloud time (seconds since the job started) becomes wall-clock time from the
job's creation, so a simulated job reads like a real one.
"""

from __future__ import annotations

import datetime

from slm_plugin.control import cloud as api
from slm_plugin.control import eta
from slm_plugin.db import api as db
from slm_plugin.db import states
from slm_plugin.planning.plan import Plan

# cloud status -> member state; a held member released goes on to switch over
_STATE = {
    api.MIGRATING: states.MIGRATING,
    api.HELD: states.HELD,
    api.SWITCHED_OVER: states.SWITCHED_OVER,
    api.COMPLETED: states.SWITCHED_OVER,
    api.ABORTED: states.ABORTED,
    api.FAILED: states.FAILED,
}


MIB = 1024 * 1024


class Journal:
    #: Cloud seconds between two writes of a migrating member's bytes (0: every look)
    progress_interval_s = 2.0
    _progress_written: float | None = None
    #: the job's plan, for the group's progress and predicted switchover (None: not written)
    plan: Plan | None = None
    #: the group's progress last written: the next one is never lower (eta.estimate)
    fraction = 0.0
    #: the group's switchover instant as last predicted (None: not yet)
    eta_at: datetime.datetime | None = None

    def __init__(self, context, plan: Plan, group_id: str, group_name: str,
                 request: dict, epoch: datetime.datetime | None = None):
        self.context = context
        self.epoch = epoch or datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        job = db.create_job(context, {
            'server_group_id': group_id, 'server_group_name': group_name,
            'strategy': plan.strategy, 'request': request, 'plan': _plan_dict(plan),
        }, members=[{'server_id': m.member, 'name': m.member, 'source_host': m.source,
                     'destination_host': m.destination} for m in plan.members])
        self.job_id = job.id
        self.plan = plan
        self.member_ids = {m.server_id: m.id for m in db.list_members(context, job.id)}
        self._state = dict.fromkeys(self.member_ids, states.QUEUED)
        self._final: set[str] = set()  # members whose final figures are written
        db.update_job(context, self.job_id, {'status': states.PLANNING})
        db.update_job(context, self.job_id, {'status': states.RUNNING})
        self.event('job.started', {'members': len(self.member_ids)}, at=0.0)

    def at(self, seconds: float) -> datetime.datetime:
        return self.epoch + datetime.timedelta(seconds=seconds)

    def event(self, kind: str, detail=None, member: str | None = None, at: float = 0.0):
        db.add_event(self.context, self.job_id, kind, detail,
                     member_id=self.member_ids.get(member) if member else None, at=self.at(at))

    def observe(self, now: float, progress: dict[str, api.Progress]) -> None:
        for name, p in progress.items():
            new = _STATE.get(p.status)
            old = self._state.get(name)
            if new == old == states.SWITCHED_OVER and name not in self._final:
                self._final_figures(name, p)
            if new is None or old is None or new == old:
                continue
            if old == states.QUEUED and new not in states.MEMBER_TRANSITIONS[old]:
                # started and got further between two looks (a small member, a long
                # tick): record the start, or the member would stay queued for good
                self._record(name, p, states.MIGRATING, p.started_at)
                old = states.MIGRATING
            if new not in states.MEMBER_TRANSITIONS[old]:
                continue  # e.g. released from held: it is still on its way to switch over
            self._record(name, p, new, now)
        self._write_progress(now, progress)

    def _write_progress(self, now: float, progress: dict[str, api.Progress]) -> None:
        """The bytes of the migrating members, and the group's progress and predicted
        switchover, at most every ``progress_interval_s`` (and once when all have ended)."""
        last = self._progress_written
        ended = bool(progress) and all(p.status in api.FINAL for p in progress.values())
        if last is not None and now - last < self.progress_interval_s and not (
                ended and self.fraction < 1.0):
            return
        values = {}
        for name, p in progress.items():
            if p.status in (api.MIGRATING, api.HELD) and name in self.member_ids:
                values[self.member_ids[name]] = {
                    'bytes_transferred': round(p.wire_mib * MIB),
                    'remaining_bytes': round((p.memory_remaining_mib + p.disk_remaining_mib)
                                             * MIB),
                    'iteration': p.round, 'progress_at': self.at(now)}
        job = None
        if self.plan is not None:
            group = eta.estimate(self.plan, progress, now, self.fraction)
            job = {'progress': group.fraction,
                   'eta_at': None if group.eta_s is None else self.at(group.eta_s)}
            self.fraction = group.fraction
            self.eta_at = job['eta_at']
        if values or job:
            db.update_members_progress(self.context, values, job_id=self.job_id, job_values=job)
        self._progress_written = now

    def _final_figures(self, name: str, p: api.Progress) -> None:
        """A member seen switched over before its migration ended (its destination
        resumed it; Nova records the end seconds later): its downtime and bytes, once
        the cloud has them, or once it has ended."""
        if p.status not in api.FINAL and p.downtime_s is None:
            return
        db.update_member(self.context, self.member_ids[name], self._figures(name, p))

    def _figures(self, name: str, p: api.Progress) -> dict:
        """A switched-over member's downtime (None: not known yet) and bytes; final once
        its migration has ended."""
        if p.status in api.FINAL:
            self._final.add(name)
        return {'downtime_ms': None if p.downtime_s is None else round(p.downtime_s * 1000),
                'bytes_transferred': round(p.wire_mib * MIB)}

    def _record(self, name: str, p: api.Progress, new: str, now: float) -> None:
        values = {'state': new}
        if self._state[name] == states.QUEUED:
            values['started_at'] = self.at(p.started_at)
        if new == states.SWITCHED_OVER:
            values['switchover_at'] = self.at(p.switchover_at or now)
            values.update(self._figures(name, p), remaining_bytes=0)
        db.update_member(self.context, self.member_ids[name], values)
        self._state[name] = new
        self.event(f'member.{new}', {'wire_mib': round(p.wire_mib, 1)}, member=name,
                   at=p.switchover_at if new == states.SWITCHED_OVER else now)

    def finish(self, status: str, now: float, error: str | None = None) -> None:
        final = {'completed': states.COMPLETED, 'aborted': states.ABORTED}.get(status,
                                                                               states.FAILED)
        values = {'status': final}
        if error:
            values['error'] = error
        db.update_job(self.context, self.job_id, values)
        self.event(f'job.{final}', at=now)


def _plan_dict(plan: Plan) -> dict:
    return {
        'strategy': plan.strategy,
        'lower_bound_s': plan.lower_bound_s,
        'notes': list(plan.notes),
        'members': [{
            'member': m.member, 'group': m.group, 'source': m.source,
            'destination': m.destination, 'wave': m.wave, 'cap_mibps': m.cap_mibps,
            'predicted_switchover_s': m.predicted_switchover_s,
            'predicted_downtime_s': m.predicted_downtime_s,
            'predicted_wire_mib': m.predicted_wire_mib, 'completion': m.completion,
        } for m in plan.members],
    }
