"""oslo.messaging plumbing shared by the SLM services.

Every service gets its transports, RPC clients and servers, notifiers and
notification listeners here, so that they agree on the executor (threads, no
eventlet), the serializer (a RequestContext travels with every message) and
the exceptions allowed to cross the bus. Transports are cached per
configuration and URL, since each holds broker connections; cleanup()
releases them.
"""

import threading

import oslo_messaging as messaging
from oslo_log import log as logging

import slm_plugin.conf
from slm_plugin import context as slm_context

LOG = logging.getLogger(__name__)

EXECUTOR = 'threading'

# Modules whose exceptions an RPC caller gets back as themselves rather than
# as oslo_messaging.RemoteError.
ALLOWED_EXMODS = ['slm_plugin.exception']

_TRANSPORTS = {}
_LOCK = threading.Lock()


class RequestContextSerializer(messaging.Serializer):
    """Carry a slm_plugin.context.RequestContext with every message."""

    def __init__(self, base=None):
        self._base = base or messaging.NoOpSerializer()

    def serialize_entity(self, ctxt, entity):
        return self._base.serialize_entity(ctxt, entity)

    def deserialize_entity(self, ctxt, entity):
        return self._base.deserialize_entity(ctxt, entity)

    def serialize_context(self, ctxt):
        if ctxt is None:
            return {}
        return ctxt.to_dict() if hasattr(ctxt, 'to_dict') else dict(ctxt)

    def deserialize_context(self, ctxt):
        return slm_context.RequestContext.from_dict(ctxt)


def _conf(conf):
    return slm_plugin.conf.CONF if conf is None else conf


def _cached(kind, conf, url, factory):
    key = (kind, id(conf), url)
    with _LOCK:
        transport = _TRANSPORTS.get(key)
        if transport is None:
            transport = _TRANSPORTS[key] = factory(
                conf, url=url, allowed_remote_exmods=ALLOWED_EXMODS)
        return transport


def get_transport(conf=None, url=None):
    """The RPC transport of ``[DEFAULT] transport_url`` (or of url)."""
    return _cached('rpc', _conf(conf), url, messaging.get_rpc_transport)


def get_notification_transport(conf=None, url=None):
    """The notification transport: ``[oslo_messaging_notifications] transport_url``,
    or the RPC one when that is not set."""
    return _cached('notification', _conf(conf), url, messaging.get_notification_transport)


def cleanup(conf=None):
    """Close the cached transports, of conf only if given; servers must be stopped first."""
    with _LOCK:
        keys = [key for key in _TRANSPORTS if conf is None or key[1] == id(conf)]
        transports = [_TRANSPORTS.pop(key) for key in keys]
    for transport in transports:
        transport.cleanup()


def agent_topic(conf, host):
    """The topic of the agent on host (see ``[agent] topic_prefix``)."""
    return f'{_conf(conf).agent.topic_prefix}.{host}'


def get_rpc_client(conf, topic, server=None, version=None, timeout=None):
    """A client calling or casting to topic (and to one server of it, if given).

    timeout bounds call(); None means ``[DEFAULT] rpc_response_timeout``.
    """
    conf = _conf(conf)
    target = messaging.Target(topic=topic, server=server, version=version)
    return messaging.get_rpc_client(
        get_transport(conf), target, timeout=timeout, serializer=RequestContextSerializer())


def get_rpc_server(conf, topic, endpoints, server=None):
    """An RPC server of endpoints on topic, as server (``[DEFAULT] host`` by default).

    The caller starts it, and stops and waits for it before cleanup().
    """
    conf = _conf(conf)
    target = messaging.Target(topic=topic, server=server or conf.host)
    return messaging.get_rpc_server(
        get_transport(conf), target, endpoints, executor=EXECUTOR,
        serializer=RequestContextSerializer(),
        access_policy=messaging.DefaultRPCAccessPolicy)


def get_notifier(conf, publisher_id, topics=None):
    """A notifier for publisher_id, e.g. ``slm-engine.<host>``.

    It sends with ``[oslo_messaging_notifications] driver`` (nothing is sent
    when no driver is set, the oslo.messaging default) to topics, by default
    ``[oslo_messaging_notifications] topics``.
    """
    return messaging.Notifier(
        get_notification_transport(conf), publisher_id=publisher_id, topics=topics,
        serializer=RequestContextSerializer(messaging.JsonPayloadSerializer()))


def get_notification_listener(conf, topics, endpoints, pool=None):
    """A listener of the notifications sent to topics; stop and wait for it when done.

    Listeners sharing a pool name share the messages; each pool gets them all.
    """
    targets = [messaging.Target(topic=topic) for topic in topics]
    return messaging.get_notification_listener(
        get_notification_transport(conf), targets, endpoints, executor=EXECUTOR,
        serializer=RequestContextSerializer(messaging.JsonPayloadSerializer()), pool=pool)
