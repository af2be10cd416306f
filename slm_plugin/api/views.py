"""How jobs look in the API: a summary in lists, the whole story in show."""

from __future__ import annotations

import datetime

from slm_plugin.control import shares
from slm_plugin.db import states

BASE = '/v1/group-migrations'


def _time(t: datetime.datetime | None) -> str | None:
    if t is None:
        return None
    return t.replace(microsecond=(t.microsecond // 1000) * 1000).isoformat(
        timespec='milliseconds') + 'Z'


def summary(job, url: str = '') -> dict:
    request = job.request or {}
    return {
        'id': job.id,
        'group': {'id': job.server_group_id, 'name': job.server_group_name},
        'status': job.status,
        'strategy': job.strategy,
        'target': request.get('target') or {},
        'requested_by': request.get('requested_by'),
        'priority': shares.name_of(job.priority),
        'owner': job.owner,
        'error': job.error,
        'created_at': _time(job.created_at),
        'updated_at': _time(job.updated_at),
        'links': [{'rel': 'self', 'href': f'{url}{BASE}/{job.id}'}],
    }


def _clock(plan: dict):
    clock = (plan or {}).get('clock')
    if not clock:
        return None, 1.0
    return datetime.datetime.fromisoformat(clock['epoch']), clock.get('time_scale') or 1.0


def detail(job, members, url: str = '') -> dict:
    out = summary(job, url)
    request = job.request or {}
    out['options'] = request.get('options') or {}
    if request.get('reason'):
        out['reason'] = request['reason']
    out['schedule'] = request.get('schedule')  # planning.window: when it starts (1.4)
    plan = job.plan or {}
    epoch, scale = _clock(plan)
    predicted = plan.get('predicted') or {}
    rows = {m['member']: m for m in plan.get('members', ())}

    def wall(seconds):
        if epoch is None or seconds is None:
            return None
        return _time(epoch + datetime.timedelta(seconds=seconds / scale))

    out['plan'] = None if not plan else {
        'strategy': plan.get('strategy'),
        'lower_bound_s': plan.get('lower_bound_s'),
        'predicted_makespan_s': max((p['switchover_s'] for p in predicted.values()),
                                    default=None),
        'notes': plan.get('notes', []),
        'started_at': _time(epoch) if epoch else None,
        'time_scale': scale,
    }
    member_views = []
    for m in members:
        row = rows.get(m.name, {})
        pred = predicted.get(m.name, {})
        member_views.append({
            'server_id': m.server_id,
            'name': m.name,
            'state': m.state,
            'source_host': m.source_host,
            'destination_host': m.destination_host,
            'wave': row.get('wave'),
            'started_at': _time(m.started_at),
            'switchover_at': _time(m.switchover_at),
            'predicted_start_s': pred.get('start_s'),
            'predicted_switchover_at': wall(pred.get('switchover_s')),
            'predicted_switchover_s': pred.get('switchover_s'),
            'downtime_ms': m.downtime_ms,
            'predicted_downtime_ms': (round(pred['downtime_s'] * 1000)
                                      if pred.get('downtime_s') is not None else None),
            'bytes_transferred': m.bytes_transferred,
            'remaining_bytes': m.remaining_bytes,
            'iteration': m.iteration,
            'progress_at': _time(m.progress_at),
            'completion': pred.get('completion'),
        })
    out['members'] = member_views
    switched = [m.switchover_at for m in members if m.switchover_at is not None]
    predicted_at = [p['switchover_s'] for p in predicted.values()]
    out['switchover'] = {
        'predicted_first_at': wall(min(predicted_at)) if predicted_at else None,
        'predicted_last_at': wall(max(predicted_at)) if predicted_at else None,
        'predicted_spread_s': (max(predicted_at) - min(predicted_at)) / scale
        if predicted_at else None,
        'first_at': _time(min(switched)) if switched else None,
        'last_at': _time(max(switched)) if switched else None,
        'spread_s': (max(switched) - min(switched)).total_seconds() if switched else None,
        'switched_over': len(switched),
        'members': len(members),
        'done': job.status in (states.COMPLETED, states.FAILED, states.ABORTED),
        # re-predicted from the migrations' progress while the job runs (control.eta)
        'eta_at': _time(job.eta_at) if job.status == states.RUNNING else None,
        'progress': 1.0 if job.status == states.COMPLETED else job.progress,
    }
    return out


def event(e, names: dict) -> dict:
    return {'at': _time(e.at), 'kind': e.kind, 'member': names.get(e.member_id),
            'detail': e.detail}
