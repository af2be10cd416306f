"""Notifications the engine sends about jobs, through oslo.messaging's notifier.

Event types, all with publisher ``slm-engine:<host>``:

* ``slm.job.started`` (INFO): the plan is made and the first migrations start;
* ``slm.member.switched_over`` (INFO): a server runs at its destination;
* ``slm.job.completed`` (INFO), ``slm.job.aborted`` (INFO),
  ``slm.job.failed`` (ERROR): the job ended.

Payloads are plain JSON objects; every one carries ``job_id`` and the group.
Nothing is sent unless ``[oslo_messaging_notifications] driver`` is set.
"""

from __future__ import annotations

from oslo_context import context
from oslo_log import log as logging

from slm_plugin.common import messaging as rpc
from slm_plugin.db import states

LOG = logging.getLogger(__name__)


def _time(t):
    return t.isoformat() if t is not None else None


def job_payload(job) -> dict:
    return {
        'job_id': job.id,
        'server_group_id': job.server_group_id,
        'server_group_name': job.server_group_name,
        'strategy': job.strategy,
        'status': job.status,
        'owner': job.owner,
        'error': job.error,
        'created_at': _time(job.created_at),
        'updated_at': _time(job.updated_at),
    }


class JobNotifier:
    def __init__(self, conf, host: str, notifier=None):
        self._notifier = notifier or rpc.get_notifier(conf, f'slm-engine:{host}')

    def _send(self, ctxt, priority, event_type, payload):
        # the notifier sends a redacted copy of the context, which makes itself
        # the thread's current one: put back ours, whose log lines name the job
        current = context.get_current()
        try:
            getattr(self._notifier, priority)(ctxt, event_type, payload)
        except Exception:
            # a notification lost must not stop a migration
            LOG.exception('Could not send the %s notification', event_type)
        finally:
            if current is not None:
                current.update_store()

    def job_started(self, ctxt, job):
        payload = job_payload(job)
        plan = job.plan or {}
        payload['members'] = len(plan.get('members', ()))
        payload['lower_bound_s'] = plan.get('lower_bound_s')
        predicted = plan.get('predicted') or {}
        if predicted:
            payload['predicted_switchover_s'] = max(p['switchover_s'] for p in predicted.values())
        self._send(ctxt, 'info', 'slm.job.started', payload)

    def member_switched_over(self, ctxt, job_id, member):
        self._send(ctxt, 'info', 'slm.member.switched_over', {
            'job_id': job_id, 'server_id': member.server_id, 'name': member.name,
            'source_host': member.source_host, 'destination_host': member.destination_host,
            'switchover_at': _time(member.switchover_at), 'downtime_ms': member.downtime_ms,
            'bytes_transferred': member.bytes_transferred,
        })

    def job_ended(self, ctxt, job):
        priority = 'error' if job.status == states.FAILED else 'info'
        self._send(ctxt, priority, f'slm.job.{job.status}', job_payload(job))
