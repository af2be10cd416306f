"""Host maintenance: move server groups off a compute host an operator disables.

Nova sends a versioned ``service.update`` notification when a compute
service changes, e.g. ``openstack compute service set --disable
--disable-reason "maintenance: new DIMMs" host1 nova-compute``. When the
service is disabled with a reason ``[maintenance] disabled_reason_pattern``
matches, the engine creates a synchronized migration for every server group
with a member on the host (the whole group moves, together). A group already
moving is left alone: the job's lock refuses a second one.

The engines of a deployment listen in one pool (named after ``[engine]
topic``), so that one of them handles each notification; the locks make a
notification handled twice harmless.
"""

from __future__ import annotations

import re

import oslo_messaging as messaging
from oslo_log import log as logging

from slm_plugin.common import messaging as rpc

LOG = logging.getLogger(__name__)

COMPUTE = 'nova-compute'


def service_status(payload) -> dict:
    """The fields of a ServiceStatusPayload, whether wrapped as a Nova object or not."""
    if isinstance(payload, dict) and 'nova_object.data' in payload:
        return payload['nova_object.data'] or {}
    return payload if isinstance(payload, dict) else {}


class ServiceUpdateEndpoint:
    filter_rule = messaging.NotificationFilter(event_type=r'^service\.update$')

    def __init__(self, conf, engine):
        self.pattern = re.compile(conf.maintenance.disabled_reason_pattern)
        self.engine = engine

    def wanted(self, status: dict) -> bool:
        return (status.get('binary') == COMPUTE and bool(status.get('disabled'))
                and bool(status.get('host'))
                and self.pattern.search(status.get('disabled_reason') or '') is not None)

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        status = service_status(payload)
        if not self.wanted(status):
            return messaging.NotificationResult.HANDLED
        host, reason = status['host'], status.get('disabled_reason') or ''
        LOG.info('Compute host %s disabled for maintenance (%s); moving its server groups',
                 host, reason)
        try:
            created = self.engine.evacuate_host(host, reason)
        except Exception:
            LOG.exception('Could not start the evacuation of host %s; Nova will tell again '
                          'when the service changes', host)
            return messaging.NotificationResult.HANDLED
        LOG.info('Host %s: %d migration job(s) created: %s', host, len(created),
                 ', '.join(created) or 'none')
        return messaging.NotificationResult.HANDLED


def listener(conf, engine):
    """A listener of Nova's versioned notifications for engine; the caller starts it."""
    target = messaging.Target(topic=conf.maintenance.notification_topic,
                              exchange=conf.maintenance.notification_exchange)
    return messaging.get_notification_listener(
        rpc.get_notification_transport(conf), [target], [ServiceUpdateEndpoint(conf, engine)],
        executor=rpc.EXECUTOR, pool=f'{conf.engine.topic}-maintenance',
        serializer=rpc.RequestContextSerializer(messaging.JsonPayloadSerializer()))
